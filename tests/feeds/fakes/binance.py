"""A fake Binance spot API: ``/api/v3/klines``, ``ticker/price``, ``ping`` and the
kline websocket (``/stream?streams=...`` and ``/ws/<stream>``).

Klines are real candles (the bundled BTCUSDT/ADAUSDT tape) laid on a 1-minute grid
ending at the fake's ``now``; the row covering ``now`` is still open, as on Binance.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from crunch_engine.feeds.providers.replay import load_dataset
from tests.feeds.fakes.server import LocalServer

MINUTE_MS = 60_000


def kline_row(open_ms: int, o: float, h: float, low: float, c: float, v: float) -> list[Any]:
    """A 12-element kline row with numbers as strings, like the real API."""
    return [
        open_ms, f"{o}", f"{h}", f"{low}", f"{c}", f"{v}", open_ms + MINUTE_MS - 1,
        f"{v * c:.4f}", 42, f"{v / 2}", f"{v * c / 2:.4f}", "0",
    ]  # fmt: skip


def real_klines(asset: str, first_open_ms: int, count: int) -> list[list[Any]]:
    """``count`` real 1-minute candles of ``asset`` starting at ``first_open_ms``."""
    rows = load_dataset(asset)
    return [
        kline_row(first_open_ms + i * MINUTE_MS, r.open, r.high, r.low, r.close, r.volume)
        for i, r in enumerate(rows[i % len(rows)] for i in range(count))
    ]


@dataclass
class FakeBinance(LocalServer):
    """``now_ms`` decides which klines exist and which one is still open."""

    now_ms: Callable[[], int] = lambda: 0
    klines: dict[str, list[list[Any]]] = field(default_factory=dict)
    used_weight: int = 0
    weight_per_klines: int = 2
    malformed_opens: set[int] = field(default_factory=set)
    reject_ws: bool = False
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    ws_connections: int = 0
    ticker_prices: dict[str, str] = field(default_factory=dict)
    connected: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def base_url(self) -> str:
        return f"{self.root}/api"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/ticker/price", self._ticker)
        app.router.add_get("/stream", self._ws)
        app.router.add_get("/ws/{stream}", self._ws)

    def _headers(self) -> dict[str, str]:
        return {"X-MBX-USED-WEIGHT-1M": str(self.used_weight)}

    async def _ping(self, request: web.Request) -> web.Response:
        return self.injected(request) or web.json_response({}, headers=self._headers())

    async def _ticker(self, request: web.Request) -> web.Response:
        injected = self.injected(request)
        if injected is not None:
            return injected
        symbol = request.query["symbol"]
        price = self.ticker_prices.get(symbol, "100.0")
        return web.json_response({"symbol": symbol, "price": price}, headers=self._headers())

    async def _klines(self, request: web.Request) -> web.Response:
        self.used_weight += self.weight_per_klines
        injected = self.injected(request)
        if injected is not None:
            return injected
        query = request.query
        symbol = query["symbol"]
        if symbol not in self.klines:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        limit = min(int(query.get("limit", 500)), 1000)
        now = self.now_ms()
        rows = [r for r in self.klines[symbol] if r[0] <= now]
        if "startTime" in query:
            rows = [r for r in rows if r[0] >= int(query["startTime"])]
        if "endTime" in query:
            rows = [r for r in rows if r[0] <= int(query["endTime"])]
        rows = rows[:limit] if "startTime" in query else rows[-limit:]
        body = [["broken", r[0]] if r[0] in self.malformed_opens else r for r in rows]
        return web.json_response(body, headers=self._headers())

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        self.record(request)
        if self.reject_ws:
            return web.Response(status=503, text="websocket unavailable")
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.ws_connections += 1
        self.sockets.append(socket)
        async with self.connected:
            self.connected.notify_all()
        try:
            async for message in socket:
                if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            if socket in self.sockets:
                self.sockets.remove(socket)
        return socket

    async def wait_for_ws(self, count: int = 1, within: float = 5.0) -> None:
        async with asyncio.timeout(within), self.connected:
            await self.connected.wait_for(
                lambda: self.ws_connections >= count and bool(self.sockets)
            )

    async def push(self, payload: Any, *, raw: bool = False) -> None:
        """Send to every connected websocket (wrapped as a combined-stream event)."""
        for socket in list(self.sockets):
            if raw:
                await socket.send_str(payload)
            else:
                stream = f"{payload['s'].lower()}@kline_{payload['k']['i']}"
                await socket.send_str(json.dumps({"stream": stream, "data": payload}))

    async def drop_ws(self) -> None:
        """Cut every websocket connection (as a network failure would)."""
        for socket in list(self.sockets):
            await socket.close()
        self.sockets.clear()


def kline_event(symbol: str, row: list[Any], *, final: bool) -> dict[str, Any]:
    """A websocket kline event for a REST row."""
    return {
        "e": "kline",
        "E": row[6] + 1,
        "s": symbol,
        "k": {
            "t": row[0], "T": row[6], "s": symbol, "i": "1m", "f": 1, "L": 2,
            "o": row[1], "c": row[4], "h": row[2], "l": row[3], "v": row[5],
            "n": 42, "x": final, "q": row[7], "V": row[9], "Q": row[10], "B": "0",
        },
    }  # fmt: skip
