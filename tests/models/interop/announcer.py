"""A tiny orchestrator stand-in: announces models over WebSocket in the reference JSON.

``ws://127.0.0.1:{port}/{crunch_id}`` gets ``init`` with the RUNNING models, then every
``update``; ``report_failure`` messages from clients are kept in ``reports``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from crunch_engine.models.contracts import ModelEndpoint, WireState


class Announcer:
    def __init__(self, crunch_id: str = "test-crunch") -> None:
        self.crunch_id = crunch_id
        self.models: dict[str, ModelEndpoint] = {}
        self.reports: list[dict[str, Any]] = []
        self.report_event = asyncio.Event()
        self.clients: set[ServerConnection] = set()
        self.port = 0
        self._server: Server | None = None

    async def start(self) -> Announcer:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def _handle(self, connection: ServerConnection) -> None:
        path = (connection.request.path if connection.request else "/").strip("/")
        if path != self.crunch_id:
            await connection.send(json.dumps({"error": f"unknown crunch {path!r}"}))
            return
        running = [m.to_wire() for m in self.models.values() if m.state is WireState.RUNNING]
        await connection.send(json.dumps({"event": "init", "data": running}))
        self.clients.add(connection)
        try:
            async for raw in connection:
                message = json.loads(raw)
                if message.get("event") == "report_failure":
                    self.reports.extend(message.get("data") or [])
                    self.report_event.set()
        except Exception:  # a client dropping is not the announcer's problem
            pass
        finally:
            self.clients.discard(connection)

    async def update(self, *endpoints: ModelEndpoint) -> None:
        for endpoint in endpoints:
            self.models[endpoint.model_id] = endpoint
        text = json.dumps({"event": "update", "data": [e.to_wire() for e in endpoints]})
        for connection in list(self.clients):
            with contextlib.suppress(Exception):
                await connection.send(text)

    async def drop_clients(self) -> None:
        """Close every client socket (tests of the client's reconnection)."""
        for connection in list(self.clients):
            await connection.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
