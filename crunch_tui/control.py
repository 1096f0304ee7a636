"""How the TUI talks to an engine: the ``ControlPlane`` protocol and its HTTP client.

Local and attach mode differ only in who started the server; both go through
``HttpControlPlane``, so what the TUI shows is exactly what the API serves. Tests use a
fake that implements the same protocol.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from crunch_tui.snapshots import (
    FeedTape,
    LeaderboardRow,
    LogLine,
    ModelHealth,
    Prediction,
    ProcessInfo,
)

ProcessAction = Literal["start", "stop", "restart"]
StreamEvent = LogLine | ProcessInfo


class ControlError(Exception):
    """Anything that went wrong talking to the engine, with a message fit for the status line."""


class Unreachable(ControlError):
    """The server did not answer (down, starting, wrong address)."""


class ApiError(ControlError):
    """The server answered with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


@runtime_checkable
class ControlPlane(Protocol):
    """What the screens need from an engine; every call may raise ``ControlError``."""

    @property
    def url(self) -> str: ...

    async def info(self) -> Mapping[str, Any]: ...

    async def leaderboard(self) -> list[LeaderboardRow]: ...

    async def models_health(self) -> list[ModelHealth]: ...

    async def processes(self) -> list[ProcessInfo]: ...

    async def process_action(self, name: str, action: ProcessAction) -> ProcessInfo: ...

    async def logs(self, process: str | None = None, limit: int = 200) -> list[LogLine]: ...

    def stream(self) -> AsyncIterator[StreamEvent]: ...

    async def feed_tapes(self, limit: int = 60) -> list[FeedTape]: ...

    async def predictions(self, model_id: str, limit: int = 20) -> list[Prediction]: ...

    async def aclose(self) -> None: ...


class HttpControlPlane:
    """``ControlPlane`` over the HTTP API of ``crunch serve`` (docs/api.md)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self._url, headers=headers, timeout=timeout, transport=transport
        )

    @property
    def url(self) -> str:
        return self._url

    async def _request(self, method: str, path: str, **params: Any) -> httpx.Response:
        query = {k: v for k, v in params.items() if v is not None}
        try:
            response = await self._client.request(method, path, params=query)
        except httpx.TransportError as exc:
            raise Unreachable(f"{self._url} unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response

    async def _get(self, path: str, **params: Any) -> Any:
        response = await self._request("GET", path, **params)
        try:
            return response.json()
        except ValueError as exc:
            raise ControlError(f"{path}: the answer is not JSON") from exc

    async def info(self) -> Mapping[str, Any]:
        data = await self._get("/info")
        return data if isinstance(data, dict) else {}

    async def leaderboard(self) -> list[LeaderboardRow]:
        return [LeaderboardRow.from_json(r) for r in await self._get("/reports/leaderboard")]

    async def models_health(self) -> list[ModelHealth]:
        return [ModelHealth.from_json(r) for r in await self._get("/control/models/health")]

    async def processes(self) -> list[ProcessInfo]:
        return [ProcessInfo.from_json(r) for r in await self._get("/control/processes")]

    async def process_action(self, name: str, action: ProcessAction) -> ProcessInfo:
        response = await self._request("POST", f"/control/processes/{name}/{action}")
        return ProcessInfo.from_json(response.json())

    async def logs(self, process: str | None = None, limit: int = 200) -> list[LogLine]:
        rows = await self._get("/control/logs", process=process, limit=limit)
        return [LogLine.from_json(r) for r in rows]

    async def stream(self) -> AsyncIterator[StreamEvent]:
        """Server-Sent Events of ``/control/logs/stream``; ends when the server closes it."""
        timeout = httpx.Timeout(10.0, read=45.0)  # the server pings every 15 s
        try:
            async with self._client.stream("GET", "/control/logs/stream", timeout=timeout) as r:
                if r.status_code >= 400:
                    await r.aread()
                    raise ApiError(r.status_code, _detail(r))
                async for event, data in _sse_events(r.aiter_text()):
                    parsed = _stream_event(event, data)
                    if parsed is not None:
                        yield parsed
        except httpx.TransportError as exc:
            raise Unreachable(f"log stream lost ({type(exc).__name__})") from exc

    async def feed_tapes(self, limit: int = 60) -> list[FeedTape]:
        feeds = await self._get("/reports/feeds")

        async def tail(feed: Mapping[str, Any]) -> FeedTape:
            keys = ("source", "subject", "kind", "granularity")
            records = await self._get(
                "/reports/feeds/tail", **{k: feed.get(k) for k in keys}, limit=limit
            )
            return FeedTape.from_records(feed, records)

        return list(await asyncio.gather(*(tail(f) for f in feeds)))

    async def predictions(self, model_id: str, limit: int = 20) -> list[Prediction]:
        rows = await self._get("/reports/predictions", projectIds=model_id, limit=limit)
        return [Prediction.from_json(r) for r in rows]

    async def aclose(self) -> None:
        await self._client.aclose()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return str(body)[:200]


async def _sse_events(chunks: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """Minimal SSE framing: events end at a blank line; ``event:`` / ``data:`` fields.

    Splits whole chunks rather than iterating line by line: at hundreds of log lines a
    second the per-line async iteration of ``aiter_lines`` was a visible share of CPU.
    """
    buffer = ""
    async for chunk in chunks:
        buffer += chunk.replace("\r\n", "\n")
        *blocks, buffer = buffer.split("\n\n")
        for block in blocks:
            parsed = _sse_block(block)
            if parsed is not None:
                yield parsed
    if buffer.strip():
        parsed = _sse_block(buffer)
        if parsed is not None:
            yield parsed


def _sse_block(block: str) -> tuple[str, str] | None:
    event, data = "message", []
    for line in block.split("\n"):
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            event = line[6:].strip()
        # comments (": ping", the keep-alive) and other fields are ignored
    return (event, "\n".join(data)) if data else None


def _stream_event(event: str, data: str) -> StreamEvent | None:
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if event == "log":
        return LogLine.from_json(payload)
    if event == "state":
        return ProcessInfo.from_json(payload)
    return None
