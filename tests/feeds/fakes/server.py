"""A tiny aiohttp server on 127.0.0.1 with a random port, and status-injection rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict, MultiDict


@dataclass(frozen=True)
class Seen:
    """One request the fake received (copied, so it outlives the connection)."""

    path: str
    query: MultiDict[str]
    headers: CIMultiDict[str]


@dataclass
class Injection:
    """Answer the next ``count`` matching requests with ``status`` instead of data."""

    status: int
    count: int = 1
    retry_after: str | None = None
    body: str = '{"code": -1003, "msg": "Too many requests"}'
    path_contains: str = ""


@dataclass
class LocalServer:
    """Owns the aiohttp runner; subclasses add routes in ``routes``."""

    host: str = "127.0.0.1"
    port: int = 0
    injections: list[Injection] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> LocalServer:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    def inject(
        self, status: int, count: int = 1, retry_after: str | None = None, **kw: str
    ) -> None:
        self.injections.append(Injection(status, count, retry_after, **kw))

    def record(self, request: web.Request) -> None:
        self.requests.append(
            Seen(request.path, MultiDict(request.query), CIMultiDict(request.headers))
        )

    def injected(self, request: web.Request) -> web.Response | None:
        """Record the request; the injected answer for it if a rule matches (consumed)."""
        self.record(request)
        for rule in self.injections:
            if rule.count > 0 and rule.path_contains in request.path:
                rule.count -= 1
                headers = {"Retry-After": rule.retry_after} if rule.retry_after else {}
                return web.Response(
                    status=rule.status,
                    text=rule.body,
                    headers=headers,
                    content_type="application/json",
                )
        return None

    def hits(self, fragment: str) -> list[Seen]:
        return [r for r in self.requests if fragment in r.path]
