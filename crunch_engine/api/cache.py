"""A micro-cache for hot report reads: a response is reused for up to ``ttl`` seconds.

The leaderboard changes once per score cycle (seconds), but dashboards poll it from
many browsers and TUIs at once; rebuilding 1,000 rows per request would cap the API at
tens of requests per second. A second of staleness buys thousands. Only one request per
key ever rebuilds an entry (single flight): while it does, the others get the previous
body (stale-while-revalidate, bounded by STALE_FACTOR x ttl) or wait for it when there
is none. Pure ASGI: no per-request overhead beyond a dict lookup.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
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

logger = logging.getLogger(__name__)

MAX_ENTRIES = 512
MAX_BODY_BYTES = 8 * 1024 * 1024
GZIP_MIN_BYTES = 1024
STALE_FACTOR = 5
"""An expired entry is still served (while one background request refreshes it) for up
to this many TTLs; older than that, requests wait for the fresh one."""


@dataclass(slots=True)
class _Entry:
    fresh_until: float
    stale_until: float
    headers: list[tuple[bytes, bytes]]
    body: bytes
    gzipped: bytes | None = None

    def gzip_body(self) -> bytes:
        if self.gzipped is None:
            self.gzipped = gzip.compress(self.body, compresslevel=5, mtime=0)
        return self.gzipped


class MicroCache:
    """Caches 200 responses of GET requests on ``paths`` (exact), keyed by path + query.

    Fresh entries are replayed; stale ones too, while a single background request
    refreshes them (stale-while-revalidate), so no client waits for a rebuild. Bodies
    are sent gzipped to clients that accept it (compressed once per entry).
    """

    def __init__(self, app: ASGIApp, *, paths: Iterable[str], ttl: float) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.ttl = ttl
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._building: dict[bytes, asyncio.Future[None]] = {}
        self._background: set[asyncio.Task[None]] = set()

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
        wants_gzip = _accepts_gzip(scope)
        while True:
            now = time.monotonic()
            entry = self._entries.get(key)
            if entry is not None and entry.fresh_until > now:
                await _replay(entry, send, wants_gzip)
                return
            pending = self._building.get(key)
            if entry is not None and entry.stale_until > now:
                if pending is None:
                    self._refresh_in_background(key, scope)
                await _replay(entry, send, wants_gzip)
                return
            if pending is None:
                break
            await asyncio.shield(pending)
        done = self._claim(key)
        try:
            await self._fill(key, scope, receive, send)
        finally:
            self._release(key, done)

    def _claim(self, key: bytes) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._building[key] = done
        return done

    def _release(self, key: bytes, done: asyncio.Future[None]) -> None:
        del self._building[key]
        done.set_result(None)

    def _refresh_in_background(self, key: bytes, scope: Scope) -> None:
        done = self._claim(key)
        background_scope = dict(scope)

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            return None

        async def refresh() -> None:
            try:
                await self._fill(key, background_scope, receive, discard)
            except Exception:  # the next request tries again; the stale entry stays
                logger.exception("refreshing %s failed", key.decode(errors="replace"))
            finally:
                self._release(key, done)

        task = asyncio.get_running_loop().create_task(refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        headers = [
            (name, value)
            for name, value in start.get("headers", [])
            if name.lower() not in (b"content-length", b"content-encoding")
        ]
        now = time.monotonic()
        self._entries[key] = _Entry(
            now + self.ttl, now + self.ttl * STALE_FACTOR, headers, b"".join(parts)
        )
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept-encoding":
            return b"gzip" in value.lower()
    return False


async def _replay(entry: _Entry, send: Send, wants_gzip: bool) -> None:
    body = entry.body
    headers = list(entry.headers)
    if wants_gzip and len(body) >= GZIP_MIN_BYTES:
        body = entry.gzip_body()
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"vary", b"Accept-Encoding"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
