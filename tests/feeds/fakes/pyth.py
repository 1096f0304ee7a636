"""A fake Pyth Hermes v2: ``/v2/updates/price/latest``, ``/v2/updates/price/{t}`` and
the SSE ``/v2/updates/price/stream``, with optional API-key enforcement (401)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.feeds.fakes.server import LocalServer

EXPO = -8


def price_entry(feed_id: str, price: float, publish_time: int, conf: float = 1.5) -> dict[str, Any]:
    """One ``parsed`` element exactly as Hermes shapes it (integers as strings)."""
    body = {
        "price": str(round(price / 10**EXPO)),
        "conf": str(round(conf / 10**EXPO)),
        "expo": EXPO,
        "publish_time": publish_time,
    }
    return {
        "id": feed_id.removeprefix("0x"),
        "price": body,
        "ema_price": dict(body),
        "metadata": {"slot": 1, "proof_available_time": publish_time, "prev_publish_time": 0},
    }


def update(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"binary": {"encoding": "hex", "data": ["00"]}, "parsed": list(entries)}


@dataclass
class FakePyth(LocalServer):
    """``history[id]`` holds ``(publish_time, price)`` pairs in time order."""

    api_key: str | None = None
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    streams: list[asyncio.Queue[str | None]] = field(default_factory=list)
    stream_connections: int = 0
    connected: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def base_url(self) -> str:
        return self.root

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/updates/price/latest", self._latest)
        app.router.add_get("/v2/updates/price/stream", self._stream)
        app.router.add_get("/v2/updates/price/{publish_time}", self._at)

    def _refuse(self, request: web.Request) -> web.Response | None:
        injected = self.injected(request)
        if injected is not None:
            return injected
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        return None

    @staticmethod
    def _ids(request: web.Request) -> list[str]:
        return [i.removeprefix("0x").lower() for i in request.query.getall("ids[]", [])]

    async def _latest(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        entries = [
            price_entry(i, self.history[i][-1][1], self.history[i][-1][0])
            for i in self._ids(request)
            if self.history.get(i)
        ]
        return web.json_response(update(*entries))

    async def _at(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        when = int(request.match_info["publish_time"])
        entries = []
        for feed_id in self._ids(request):
            later = [(t, p) for t, p in self.history.get(feed_id, []) if t >= when]
            if later:
                entries.append(price_entry(feed_id, later[0][1], later[0][0]))
        if not entries:
            return web.json_response({"message": "not found"}, status=404)
        return web.json_response(update(*entries))

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.streams.append(queue)
        self.stream_connections += 1
        async with self.connected:
            self.connected.notify_all()
        try:
            await response.write(b": keep-alive\n\n")
            while (event := await queue.get()) is not None:
                await response.write(event.encode())
        finally:
            self.streams.remove(queue)
        return response

    async def wait_for_stream(self, count: int = 1, within: float = 5.0) -> None:
        async with asyncio.timeout(within), self.connected:
            await self.connected.wait_for(
                lambda: self.stream_connections >= count and bool(self.streams)
            )

    async def send(self, payload: dict[str, Any] | str) -> None:
        """One SSE event to every open stream (a str is sent verbatim as the data)."""
        data = payload if isinstance(payload, str) else json.dumps(payload)
        for queue in list(self.streams):
            await queue.put(f"data: {data}\n\n")

    async def drop_streams(self) -> None:
        """End every open stream (the server side of a disconnect)."""
        for queue in list(self.streams):
            await queue.put(None)
