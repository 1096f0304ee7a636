"""The WebSocket that announces models to coordinators (the reference wire format).

``ws://host:port/{crunch_id}``: ``init`` with the RUNNING models on connect, then one
``update`` per state change; clients may send ``report_failure``. Each client has its
own ordered outbound queue, filled synchronously with its registration, so a client
never misses an update between its ``init`` and its first ``update``; a client too slow
to drain its queue is disconnected (it reconnects and gets a fresh ``init``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from crunch_engine.models.contracts import FailureCode, ModelEndpoint

logger = logging.getLogger(__name__)

CLIENT_QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class FailureReport:
    """One ``report_failure`` item sent by a coordinator about one model."""

    model_id: str
    failure_code: FailureCode
    failure_reason: str
    ip: str


def parse_failure_reports(data: object) -> tuple[list[FailureReport], list[str]]:
    """Valid reports, and a reason for each item that was not one."""
    if not isinstance(data, list):
        return [], [f"`data` must be a list, got {type(data).__name__}"]
    reports: list[FailureReport] = []
    problems: list[str] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not item.get("model_id"):
            problems.append(f"data[{index}]: expected an object with model_id")
            continue
        try:
            code = FailureCode(str(item.get("failure_code")))
        except ValueError:
            problems.append(f"data[{index}]: unknown failure_code {item.get('failure_code')!r}")
            continue
        reports.append(
            FailureReport(
                model_id=str(item["model_id"]),
                failure_code=code,
                failure_reason=str(item.get("failure_reason") or ""),
                ip=str(item.get("ip") or ""),
            )
        )
    return reports, problems


def _message(event: str, endpoints: Iterable[ModelEndpoint]) -> str:
    return json.dumps({"event": event, "data": [e.to_wire() for e in endpoints]})


class ModelPublisher:
    """Serves the discovery WebSocket of one crunch."""

    def __init__(
        self,
        host: str,
        port: int,
        crunch_id: str,
        *,
        running: Callable[[], list[ModelEndpoint]],
        on_failure: Callable[[FailureReport], Awaitable[None]],
        queue_size: int = CLIENT_QUEUE_SIZE,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.crunch_id = crunch_id
        self.running = running
        self.on_failure = on_failure
        self.queue_size = queue_size
        self._server: Server | None = None
        self._clients: dict[ServerConnection, asyncio.Queue[str]] = {}
        self._closing: set[asyncio.Future[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (differs from the requested one when that was 0)."""
        if self._server is None:
            return self.requested_port
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, self.requested_port)
        logger.info("announcing models on ws://%s:%d/%s", self.host, self.port, self.crunch_id)

    async def close(self) -> None:
        if self._server is None:
            return
        for queue in self._clients.values():  # let pending updates (final STOPPEDs) out
            with contextlib.suppress(Exception):
                await asyncio.wait_for(queue.join(), 1.0)
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    def publish(self, endpoints: list[ModelEndpoint]) -> None:
        """Queue an ``update`` for every client (never blocks the caller)."""
        if not endpoints:
            return
        message = _message("update", endpoints)
        for connection, queue in list(self._clients.items()):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                logger.warning("client %s too slow: disconnecting", connection.remote_address)
                self._clients.pop(connection, None)
                closing = asyncio.ensure_future(connection.close(1013, "too slow, reconnect"))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)

    async def _handle(self, connection: ServerConnection) -> None:
        path = (connection.request.path if connection.request else "/").split("?", 1)[0]
        requested = path.strip("/")
        if requested != self.crunch_id:
            error = (
                "crunch_id is required in the path: /<crunch_id>"
                if not requested
                else f"unknown crunch_id {requested!r}: this orchestrator serves {self.crunch_id!r}"
            )
            with contextlib.suppress(ConnectionClosed):
                await connection.send(json.dumps({"error": error}))
                await connection.close(1008, "unknown crunch")
            return
        queue: asyncio.Queue[str] = asyncio.Queue(self.queue_size)
        queue.put_nowait(_message("init", self.running()))  # same tick as registering
        self._clients[connection] = queue
        writer = asyncio.create_task(self._write(connection, queue))
        logger.info("coordinator connected from %s", connection.remote_address)
        try:
            async for raw in connection:
                await self._receive(connection, raw)
        except ConnectionClosed:
            pass
        finally:
            self._clients.pop(connection, None)
            writer.cancel()
            logger.info("coordinator disconnected from %s", connection.remote_address)

    @staticmethod
    async def _write(connection: ServerConnection, queue: asyncio.Queue[str]) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = await queue.get()
                try:
                    await connection.send(message)
                finally:
                    queue.task_done()

    async def _receive(self, connection: ServerConnection, raw: str | bytes) -> None:
        try:
            message: Any = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            logger.warning("ignored a non-JSON message from %s", connection.remote_address)
            return
        if not isinstance(message, dict) or message.get("event") != "report_failure":
            logger.debug("ignored message from %s: %.200s", connection.remote_address, raw)
            return
        reports, problems = parse_failure_reports(message.get("data"))
        for problem in problems:
            logger.warning("report_failure from %s: %s", connection.remote_address, problem)
        for report in reports:
            try:
                await self.on_failure(report)
            except Exception:
                logger.exception("handling %s failed", report)
