"""Binance spot REST: klines, ticker price and ping, through python-binance or httpx.

python-binance's ``AsyncClient`` is preferred (constructed directly: ``create()`` and
the sync ``Client(ping=True)`` make a network call on construction, which breaks
offline starts). When the SDK cannot be imported, or fails where plain HTTP works, the
same calls go through httpx. Either way this layer honours 429/418 with their
``Retry-After``, retries 5xx and connection errors with backoff, and slows down when
``X-MBX-USED-WEIGHT-1M`` nears the per-minute budget, so repeated 429s never turn
into an IP ban (418).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from crunch_engine.feeds.base import Clock, FeedError, FeedRateLimitError, floor_time
from crunch_engine.feeds.providers.common import backoff_delay, parse_retry_after, shorten

logger = logging.getLogger(__name__)

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
BAN_DEFAULT_SECONDS = 60.0

try:  # the SDK is optional at runtime: httpx covers the same calls
    from binance import AsyncClient
    from binance.exceptions import BinanceAPIException, BinanceRequestException
except ImportError:  # pragma: no cover - exercised by forcing use_sdk=False in tests
    AsyncClient = None  # type: ignore[assignment,misc]
    BinanceAPIException = BinanceRequestException = None  # type: ignore[assignment,misc]


class _Status(Exception):
    """An HTTP answer outside 2xx, from either transport."""

    def __init__(self, status: int, headers: Any, body: str) -> None:
        super().__init__(f"HTTP {status}: {shorten(body)}")
        self.status = status
        self.headers = httpx.Headers(list(headers.items()) if headers else [])
        self.body = body


class _Transport(Exception):
    """No usable answer: connection refused, timeout, or a body that is not JSON."""


def sdk_available() -> bool:
    return AsyncClient is not None


class BinanceRest:
    """The three public spot calls the feed needs, with retries and rate discipline."""

    def __init__(
        self,
        *,
        base_url: str,
        clock: Clock,
        use_sdk: bool = True,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        weight_limit: int = 6000,
        weight_slowdown: float = 0.8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._weight_limit = weight_limit
        self._weight_slowdown = weight_slowdown
        self._want_sdk = use_sdk and sdk_available()
        self._sdk: Any = None
        self._http: httpx.AsyncClient | None = None
        self._pause_until: datetime | None = None
        self.used_weight: int | None = None
        self.transport = "sdk" if self._want_sdk else "httpx"

    # -- transports ---------------------------------------------------------------

    def sdk_client(self) -> Any:
        """The shared python-binance client (also used by the websocket manager)."""
        if AsyncClient is None:
            raise FeedError("python-binance is not installed")
        if self._sdk is None:
            client = AsyncClient()
            client.API_URL = self.base_url
            client.REQUEST_TIMEOUT = self._timeout
            self._sdk = client
        return self._sdk

    def _httpx(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.base_url + "/", timeout=self._timeout)
        return self._http

    async def _via_sdk(self, path: str, params: dict[str, Any]) -> tuple[Any, Mapping[str, str]]:
        client = self.sdk_client()
        call = {
            "klines": client.get_klines,
            "ticker/price": client.get_symbol_ticker,
            "ping": client.ping,
        }[path]
        try:
            data = await call(**params)
        except BinanceAPIException as exc:
            headers = getattr(exc.response, "headers", None)
            raise _Status(exc.status_code, headers, str(exc.message)) from None
        except BinanceRequestException as exc:
            raise _Transport(f"not JSON: {shorten(exc.message)}") from None
        headers = client.response.headers if client.response is not None else {}
        return data, httpx.Headers(list(headers.items()))

    async def _via_httpx(self, path: str, params: dict[str, Any]) -> tuple[Any, Mapping[str, str]]:
        try:
            response = await self._httpx().get(f"v3/{path}", params=params)
        except httpx.HTTPError as exc:
            raise _Transport(f"{type(exc).__name__}: {exc}") from None
        if response.status_code // 100 != 2:
            raise _Status(response.status_code, response.headers, response.text)
        try:
            return response.json(), response.headers
        except ValueError:
            raise _Transport(f"not JSON: {shorten(response.text)}") from None

    async def _once(self, path: str, params: dict[str, Any]) -> tuple[Any, Mapping[str, str]]:
        if not self._want_sdk:
            return await self._via_httpx(path, params)
        try:
            return await self._via_sdk(path, params)
        except (_Status, _Transport):
            raise
        except Exception as exc:
            # The SDK broke where it should not (connection layer, version drift):
            # ask plain HTTP; if that works, stay on it.
            logger.warning(
                "feed=binance sdk call %s failed (%s: %s); trying httpx",
                path,
                type(exc).__name__,
                shorten(str(exc)),
            )
            result = await self._via_httpx(path, params)
            self._want_sdk = False
            self.transport = "httpx"
            logger.warning("feed=binance switched REST transport to httpx")
            return result

    # -- rate discipline ---------------------------------------------------------------

    def _note_weight(self, headers: Mapping[str, str]) -> None:
        raw = headers.get(WEIGHT_HEADER)
        if raw is None:
            return
        try:
            self.used_weight = int(raw)
        except ValueError:
            return
        if self.used_weight >= self._weight_limit * self._weight_slowdown:
            now = self._clock.now()
            self._pause_until = floor_time(now, timedelta(minutes=1)) + timedelta(minutes=1)
            logger.warning(
                "feed=binance used weight %d/%d: pausing requests until %s",
                self.used_weight,
                self._weight_limit,
                self._pause_until.isoformat(),
            )

    async def _respect_weight(self) -> None:
        if self._pause_until is None:
            return
        wait = (self._pause_until - self._clock.now()).total_seconds()
        self._pause_until = None
        if wait > 0:
            await self._clock.sleep(wait)

    async def request(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """One public GET ``/api/v3/<path>`` with retries; raises ``FeedError`` at the end."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        last_problem = ""
        for attempt in range(self._max_retries + 1):
            await self._respect_weight()
            try:
                data, headers = await self._once(path, params)
            except _Status as exc:
                self._note_weight(exc.headers)
                last_problem = str(exc)
                if exc.status in (429, 418):
                    retry_after = parse_retry_after(exc.headers.get("Retry-After"))
                    if exc.status == 418 and retry_after is None:
                        retry_after = max(BAN_DEFAULT_SECONDS, self._backoff)
                    delay = backoff_delay(attempt, self._backoff, self._max_backoff, retry_after)
                    logger.warning(
                        "feed=binance %s HTTP %d rate limited: waiting %.1fs (attempt %d/%d)",
                        path,
                        exc.status,
                        delay,
                        attempt + 1,
                        self._max_retries + 1,
                    )
                    if attempt < self._max_retries:
                        await self._clock.sleep(delay)
                    continue
                if exc.status >= 500:
                    delay = backoff_delay(attempt, self._backoff, self._max_backoff)
                    logger.warning("feed=binance %s %s: retry in %.1fs", path, exc, delay)
                    if attempt < self._max_retries:
                        await self._clock.sleep(delay)
                    continue
                hint = (
                    " (region blocked: try CRUNCH_FEED_BINANCE_BASE_URL="
                    "https://data-api.binance.vision/api)"
                    if exc.status == 451
                    else ""
                )
                raise FeedError(f"binance {path} refused: {exc}{hint}") from None
            except _Transport as exc:
                last_problem = str(exc)
                delay = backoff_delay(attempt, self._backoff, self._max_backoff)
                logger.warning("feed=binance %s failed: %s; retry in %.1fs", path, exc, delay)
                if attempt < self._max_retries:
                    await self._clock.sleep(delay)
                continue
            self._note_weight(headers)
            return data
        if "HTTP 429" in last_problem or "HTTP 418" in last_problem:
            raise FeedRateLimitError(
                f"binance {path} still rate limited after {self._max_retries + 1} attempts"
            )
        raise FeedError(
            f"binance {path} failed after {self._max_retries + 1} attempts: {last_problem}"
        )

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
    ) -> Any:
        return await self.request(
            "klines",
            {
                "symbol": symbol,
                "interval": interval,
                "startTime": start_ms,
                "endTime": end_ms,
                "limit": limit,
            },
        )

    async def ticker_price(self, symbol: str) -> Any:
        return await self.request("ticker/price", {"symbol": symbol})

    async def ping(self) -> Any:
        return await self.request("ping")

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close_connection()
            self._sdk = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await asyncio.sleep(0)
