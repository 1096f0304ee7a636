"""A micro-cache for hot report reads: a response is reused for up to ``ttl`` seconds.

The leaderboard changes once per score cycle (seconds), but dashboards poll it from
many browsers and TUIs at once; rebuilding 1,000 rows per request would cap the API at
tens of requests per second. A sub-second staleness buys thousands. One request per
key rebuilds the entry while the others wait for it (single flight), so an expired
entry never causes a stampede. Pure ASGI: no per-request overhead beyond a dict lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_ENTRIES = 512
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class _Entry:
    expires: float
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class MicroCache:
    """Caches 200 responses of GET requests on ``paths`` (exact), keyed by path + query."""

    def __init__(self, app: ASGIApp, *, paths: Iterable[str], ttl: float) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.ttl = ttl
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._building: dict[bytes, asyncio.Future[None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.ttl <= 0
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] not in self.paths
        ):
            await self.app(scope, receive, send)
            return
        key = scope["path"].encode() + b"?" + scope.get("query_string", b"")
        while True:
            entry = self._entries.get(key)
            if entry is not None and entry.expires > time.monotonic():
                await _replay(entry, send)
                return
            pending = self._building.get(key)
            if pending is None:
                break
            await asyncio.shield(pending)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._building[key] = done
        try:
            await self._fill(key, scope, receive, send)
        finally:
            del self._building[key]
            done.set_result(None)

    async def _fill(self, key: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {}
        parts: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                size += len(parts[-1])
            await send(message)

        await self.app(scope, receive, capture)
        if start.get("status") != 200 or size > MAX_BODY_BYTES:
            return
        self._entries[key] = _Entry(
            time.monotonic() + self.ttl, 200, list(start.get("headers", [])), b"".join(parts)
        )
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)


async def _replay(entry: _Entry, send: Send) -> None:
    await send({"type": "http.response.start", "status": entry.status, "headers": entry.headers})
    await send({"type": "http.response.body", "body": entry.body})
