"""Model discovery over the orchestrator's WebSocket (the reference JSON protocol).

``ws://host:port/{crunch_id}`` sends ``{"event": "init", "data": [ModelState...]}`` on
connect, then ``{"event": "update", ...}`` on every change; we send
``{"event": "report_failure", "data": [...]}``. The link reconnects with backoff when the
socket drops; reports made while disconnected are queued (bounded) and sent on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

logger = logging.getLogger("crunch_engine.models.client")

EventHandler = Callable[[str, list[dict[str, Any]]], None]


class OrchestratorError(RuntimeError):
    """The orchestrator refused the connection (e.g. unknown crunch id)."""


class OrchestratorLink:
    """A self-healing WebSocket to one orchestrator; events go to ``on_event``."""

    def __init__(
        self,
        host: str,
        port: int,
        crunch_id: str,
        on_event: EventHandler,
        *,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.uri = f"ws://{host}:{port}/{crunch_id}"
        self.on_event = on_event
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._socket: ClientConnection | None = None
        self._outbox: deque[str] = deque(maxlen=1000)
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None

    async def start(self, within: float = 10.0) -> None:
        """Connect and process the ``init`` event; keep the link alive in the background."""
        loop = asyncio.get_running_loop()
        self._first = loop.create_future()
        self._task = loop.create_task(self._run(), name=f"orchestrator-link {self.uri}")
        try:
            await asyncio.wait_for(asyncio.shield(self._first), within)
        except BaseException:
            await self.close()
            raise

    async def _run(self) -> None:
        backoff = self.min_backoff
        while True:
            try:
                async with connect(self.uri, open_timeout=5, max_size=64 * 1024 * 1024) as socket:
                    self._socket = socket
                    backoff = self.min_backoff
                    await self._flush_outbox(socket)
                    self.connected.set()
                    async for raw in socket:
                        self._dispatch(raw)
            except asyncio.CancelledError:
                raise
            except OrchestratorError as error:
                if self._first is not None and not self._first.done():
                    self._first.set_exception(error)
                    return
                logger.warning("orchestrator %s: %s", self.uri, error)
            except (OSError, WebSocketException, TimeoutError) as error:
                logger.info(
                    "orchestrator %s unreachable (%s); retry in %.1fs", self.uri, error, backoff
                )
            finally:
                self._socket = None
                self.connected.clear()
            self.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("orchestrator sent a non-JSON message: %.200r", raw)
            return
        if not isinstance(message, dict):
            return
        if "error" in message and "event" not in message:
            raise OrchestratorError(str(message["error"]))
        event, data = message.get("event"), message.get("data")
        if event not in ("init", "update") or not isinstance(data, list):
            logger.debug("ignored orchestrator message %.200r", raw)
            return
        try:
            self.on_event(event, data)
        except Exception:
            logger.exception("handling orchestrator event %s failed", event)
        if event == "init" and self._first is not None and not self._first.done():
            self._first.set_result(None)

    async def _flush_outbox(self, socket: ClientConnection) -> None:
        while self._outbox:
            await socket.send(self._outbox[0])
            self._outbox.popleft()

    async def report_failure(self, model_id: str, failure_code: str, reason: str, ip: str) -> None:
        """Tell the orchestrator a model misbehaves (it stops, maybe quarantines, the model)."""
        payload = {
            "event": "report_failure",
            "data": [
                {
                    "model_id": model_id,
                    "failure_code": failure_code,
                    "failure_reason": reason,
                    "ip": ip,
                }
            ],
        }
        text = json.dumps(payload)
        socket = self._socket
        if socket is None:
            self._outbox.append(text)
            return
        try:
            await socket.send(text)
        except (OSError, WebSocketException):
            self._outbox.append(text)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
