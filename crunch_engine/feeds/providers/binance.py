"""Binance feed: spot klines for backfill, the kline websocket for live candles.

Only closed candles ever leave this module: a REST answer's last kline is usually still
open (close time in the future) and a websocket kline counts only when ``k.x`` is true;
a stored partial candle would corrupt ground truth. While the websocket is down (or
disabled, or python-binance missing) the feed polls REST instead and fills every gap in
order, then tries the websocket again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from crunch_engine.feeds.base import (
    Clock,
    FeedError,
    FeedFetchRequest,
    FeedHandle,
    FeedSink,
    FeedSubscription,
    SystemClock,
    TaskFeedHandle,
    clip,
    deliver,
    floor_time,
    parse_granularity,
    report_error,
)
from crunch_engine.feeds.contracts import MarketRecord, RecordKind
from crunch_engine.feeds.providers.binance_rest import BinanceRest, sdk_available
from crunch_engine.feeds.providers.common import candle_values, shorten
from crunch_engine.feeds.settings import FeedSettings
from crunch_engine.timeutil import from_epoch_ms, to_epoch_ms

logger = logging.getLogger(__name__)

PROVIDER = "binance"
PAGE_LIMIT = 1000
INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d")
WS_GRACE = timedelta(seconds=5)
"""How late a final websocket kline may be before REST is asked instead."""


def kline_to_record(
    row: Any, asset: str, granularity: str, kind: RecordKind, now_ms: int
) -> MarketRecord | None:
    """One REST kline row as a record; None while the kline is still open.

    Ticks are the closes, stamped at the close time (open + interval). Raises
    ``ValueError`` on a malformed row so the caller can log and skip it.
    """
    if not isinstance(row, list | tuple) or len(row) < 7:
        raise ValueError("kline row is not a 12-element array")
    open_ms, close_ms = int(row[0]), int(row[6])
    if close_ms >= now_ms:
        return None
    open_, high, low, close, volume = (float(row[i]) for i in range(1, 6))
    if kind == "tick":
        return MarketRecord(
            provider=PROVIDER,
            asset=asset,
            kind="tick",
            granularity=granularity,
            ts_event=from_epoch_ms(close_ms + 1),
            values={"price": close},
            meta={"source": "kline-close"},
        )
    return MarketRecord(
        provider=PROVIDER,
        asset=asset,
        kind="candle",
        granularity=granularity,
        ts_event=from_epoch_ms(open_ms),
        values=candle_values(open_, high, low, close, volume),
        meta={"trades": int(row[8])} if len(row) > 8 else {},
    )


class BinanceFeed:
    """Binance spot market data through python-binance, httpx as the fallback."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        rest: BinanceRest,
        clock: Clock,
        ws_url: str = "wss://stream.binance.com:9443/",
        quote: str = "USDT",
        symbols: Mapping[str, str] | None = None,
        use_websocket: bool = True,
        poll_seconds: float = 5.0,
        ws_retry_seconds: float = 30.0,
    ) -> None:
        self.rest = rest
        self._clock = clock
        self._ws_url = ws_url if ws_url.endswith("/") else ws_url + "/"
        self._quote = quote.upper()
        self._symbols = {k.upper(): v.upper() for k, v in (symbols or {}).items()}
        self._use_ws = use_websocket
        self._poll = poll_seconds
        self._ws_retry = ws_retry_seconds
        self.ws_connects = 0

    @classmethod
    def from_settings(cls, settings: FeedSettings, clock: Clock | None = None) -> BinanceFeed:
        clock = clock or SystemClock()
        rest = BinanceRest(
            base_url=settings.binance_base_url,
            clock=clock,
            use_sdk=settings.binance_use_sdk,
            timeout=settings.request_timeout_seconds,
            max_retries=settings.max_retries,
            backoff_seconds=settings.backoff_seconds,
            max_backoff_seconds=settings.max_backoff_seconds,
            weight_limit=settings.binance_weight_limit,
            weight_slowdown=settings.binance_weight_slowdown,
        )
        return cls(
            rest=rest,
            clock=clock,
            ws_url=settings.binance_ws_url,
            quote=settings.binance_quote,
            symbols=settings.binance_symbols,
            use_websocket=settings.binance_use_websocket,
            poll_seconds=settings.binance_poll_seconds,
            ws_retry_seconds=settings.binance_ws_retry_seconds,
        )

    def symbol(self, asset: str) -> str:
        """``BTC`` -> ``BTCUSDT`` (quote configurable; explicit overrides win)."""
        asset = asset.upper()
        if asset in self._symbols:
            return self._symbols[asset]
        if asset.endswith(self._quote) and len(asset) > len(self._quote):
            return asset
        return asset + self._quote

    # -- pull ---------------------------------------------------------------------

    async def closed_klines(
        self,
        asset: str,
        granularity: str,
        kind: RecordKind,
        start: datetime,
        end: datetime,
        limit: int | None = None,
    ) -> list[MarketRecord]:
        """Every closed kline opening in ``[start, end]``, paging 1000 at a time by
        ``startTime``. No gaps: each page starts one interval after the last row seen."""
        step = _interval(granularity)
        symbol = self.symbol(asset)
        cursor, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        records: list[MarketRecord] = []
        seen: set[int] = set()
        pages = skipped = 0
        while cursor <= end_ms:
            rows = await self.rest.klines(
                symbol, granularity, start_ms=cursor, end_ms=end_ms, limit=PAGE_LIMIT
            )
            pages += 1
            if not isinstance(rows, list):
                raise FeedError(f"binance klines for {symbol}: unexpected answer {shorten(rows)}")
            now_ms = to_epoch_ms(self._clock.now())
            newest_open = None
            reached_open = False
            for row in rows:
                try:
                    open_ms = int(row[0])
                    record = kline_to_record(row, asset.upper(), granularity, kind, now_ms)
                except (ValueError, TypeError, IndexError) as exc:
                    skipped += 1
                    logger.warning(
                        "feed=binance symbol=%s malformed kline skipped (%s): %s",
                        symbol,
                        exc,
                        shorten(row),
                    )
                    continue
                newest_open = open_ms if newest_open is None else max(newest_open, open_ms)
                if record is None:
                    reached_open = True
                    continue
                if open_ms < cursor or open_ms > end_ms or open_ms in seen:
                    continue
                seen.add(open_ms)
                records.append(record)
            if reached_open or newest_open is None or len(rows) < PAGE_LIMIT:
                break
            if limit is not None and len(records) >= limit:
                break
            next_cursor = newest_open + int(step.total_seconds() * 1000)
            if next_cursor <= cursor:
                raise FeedError(f"binance klines for {symbol}: page did not advance")
            cursor = next_cursor
        records.sort(key=lambda r: r.ts_event)
        logger.info(
            "feed=binance symbol=%s kind=%s fetched=%d pages=%d skipped=%d",
            symbol,
            kind,
            len(records),
            pages,
            skipped,
        )
        return records[:limit] if limit is not None else records

    async def fetch(self, request: FeedFetchRequest) -> Sequence[MarketRecord]:
        start = request.start
        if request.kind == "tick":  # a tick at T is the close of the kline opening at T - step
            start = start - _interval(request.granularity)
        records = await self.closed_klines(
            request.asset, request.granularity, request.kind, start, request.end, None
        )
        return clip(records, request)

    # -- push ---------------------------------------------------------------------

    async def listen(self, subscription: FeedSubscription, sink: FeedSink) -> FeedHandle:
        if subscription.kind == "candle":
            _interval(subscription.granularity)
        if subscription.kind == "tick":
            runner = self._poll_ticks(subscription, sink)
        else:
            runner = self._listen_candles(subscription, sink)
        logger.info(
            "feed=binance listen assets=%s kind=%s granularity=%s websocket=%s",
            ",".join(subscription.assets),
            subscription.kind,
            subscription.granularity,
            self._use_ws and subscription.kind == "candle",
        )
        return TaskFeedHandle(asyncio.create_task(runner, name="binance-listen"), PROVIDER)

    async def _poll_ticks(self, subscription: FeedSubscription, sink: FeedSink) -> None:
        """Live ticks: ``/api/v3/ticker/price`` every poll period (it carries no time, so
        the record is stamped with the clock)."""
        while True:
            for asset in subscription.assets:
                try:
                    answer = await self.rest.ticker_price(self.symbol(asset))
                    price = float(answer["price"])
                except FeedError as exc:
                    logger.error("feed=binance asset=%s ticker failed: %s", asset, exc)
                    await report_error(sink, exc)
                    continue
                except (KeyError, TypeError, ValueError):
                    logger.warning("feed=binance malformed ticker skipped: %s", shorten(answer))
                    continue
                record = MarketRecord(
                    provider=PROVIDER,
                    asset=asset.upper(),
                    kind="tick",
                    granularity=subscription.granularity,
                    ts_event=self._clock.now(),
                    values={"price": price},
                    meta={"source": "ticker"},
                )
                await deliver(sink, record)
            await self._clock.sleep(self._poll)

    async def _listen_candles(self, subscription: FeedSubscription, sink: FeedSink) -> None:
        last: dict[str, datetime] = {}
        ws_possible = self._use_ws and sdk_available() and self.rest.transport == "sdk"
        if self._use_ws and not ws_possible:
            logger.warning("feed=binance websocket unavailable (no python-binance): REST polling")
        while True:
            if ws_possible:
                try:
                    await self._stream(subscription, sink, last)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning(
                        "feed=binance websocket down (%s: %s): polling REST every %.1fs",
                        type(exc).__name__,
                        shorten(str(exc)),
                        self._poll,
                    )
                    await report_error(sink, exc)
            retry_at = self._clock.now() + timedelta(seconds=self._ws_retry)
            while True:
                await self._catch_up(subscription, sink, last)
                if ws_possible and self._clock.now() >= retry_at:
                    break
                await self._clock.sleep(self._poll)

    async def _catch_up(
        self, subscription: FeedSubscription, sink: FeedSink, last: dict[str, datetime]
    ) -> None:
        """REST: emit every closed candle after the newest one already emitted (or just
        the newest closed one on a first poll)."""
        step = subscription.step
        now = self._clock.now()
        for asset in subscription.assets:
            asset = asset.upper()
            newest_closed = floor_time(now, step) - step
            start = last[asset] + step if asset in last else newest_closed
            if start > newest_closed:
                continue
            try:
                records = await self.closed_klines(
                    asset, subscription.granularity, "candle", start, newest_closed
                )
            except FeedError as exc:
                logger.error("feed=binance asset=%s REST poll failed: %s", asset, exc)
                await report_error(sink, exc)
                continue
            for record in records:
                if asset in last and record.ts_event <= last[asset]:
                    continue
                await deliver(sink, record)
                last[asset] = record.ts_event

    async def _stream(
        self, subscription: FeedSubscription, sink: FeedSink, last: dict[str, datetime]
    ) -> None:
        """Run the kline websocket until it dies; returns or raises when it does."""
        from binance import BinanceSocketManager

        step = subscription.step
        by_symbol = {self.symbol(a): a.upper() for a in subscription.assets}
        manager = BinanceSocketManager(self.rest.sdk_client())
        manager.STREAM_URL = self._ws_url
        streams = [f"{s.lower()}@kline_{subscription.granularity}" for s in by_symbol]
        socket = manager.multiplex_socket(streams)
        await socket.connect()
        self.ws_connects += 1
        logger.info("feed=binance websocket connected streams=%d", len(streams))
        degraded = False
        try:
            await self._catch_up(subscription, sink, last)
            while True:
                try:
                    message = await asyncio.wait_for(socket.recv(), self._poll)
                except TimeoutError:
                    if degraded or self._stale(subscription, last):
                        await self._catch_up(subscription, sink, last)
                    continue
                if message.get("e") == "error":
                    degraded = True
                    logger.warning(
                        "feed=binance websocket error %s: %s (REST covers until it recovers)",
                        message.get("type"),
                        shorten(str(message.get("m"))),
                    )
                    await self._catch_up(subscription, sink, last)
                    continue
                if degraded:
                    degraded = False
                    logger.info("feed=binance websocket recovered")
                await self._on_kline(message, by_symbol, step, subscription, sink, last)
        finally:
            await _shutdown(socket)

    def _stale(self, subscription: FeedSubscription, last: dict[str, datetime]) -> bool:
        step = subscription.step
        expected = floor_time(self._clock.now() - WS_GRACE, step) - step
        return any(last.get(a.upper(), expected - step) < expected for a in subscription.assets)

    async def _on_kline(
        self,
        message: dict[str, Any],
        by_symbol: dict[str, str],
        step: timedelta,
        subscription: FeedSubscription,
        sink: FeedSink,
        last: dict[str, datetime],
    ) -> None:
        try:
            data = message.get("data", message)
            kline = data["k"]
            asset = by_symbol[str(data.get("s") or kline["s"]).upper()]
            final = kline["x"]
            ts = from_epoch_ms(int(kline["t"]))
            values = candle_values(*(float(kline[f]) for f in ("o", "h", "l", "c", "v")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning(
                "feed=binance malformed websocket message skipped (%r): %s", exc, shorten(message)
            )
            return
        if final is not True:
            return
        previous = last.get(asset)
        if previous is not None and ts <= previous:
            return
        if previous is not None and ts > previous + step:
            await self._catch_up(subscription, sink, last)  # missed finals: REST fills the gap
            if last.get(asset) is not None and ts <= last[asset]:
                return
        record = MarketRecord(
            provider=PROVIDER,
            asset=asset,
            kind="candle",
            granularity=subscription.granularity,
            ts_event=ts,
            values=values,
            meta={"trades": int(kline.get("n", 0)), "source": "websocket"},
        )
        await deliver(sink, record)
        last[asset] = ts

    async def aclose(self) -> None:
        await self.rest.aclose()


async def _shutdown(socket: Any) -> None:
    """Close a python-binance socket promptly.

    Its read loop only notices an exit request between messages (up to 10 s), so mark
    it exiting and close the raw connection first; then the normal exit runs at once.
    """
    from binance.ws.constants import WSListenerState

    socket.ws_state = WSListenerState.EXITING
    if socket.ws is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socket.ws.close(), 2.0)
    try:
        await asyncio.wait_for(socket.__aexit__(None, None, None), 5.0)
    except (TimeoutError, Exception) as exc:  # never let cleanup mask the real outcome
        logger.warning("feed=binance websocket close incomplete: %s", type(exc).__name__)


def _interval(granularity: str) -> timedelta:
    if granularity not in INTERVALS:
        raise FeedError(
            f"binance has no kline interval {granularity!r}; use one of {', '.join(INTERVALS)}"
        )
    return parse_granularity(granularity)
