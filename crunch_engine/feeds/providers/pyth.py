"""Pyth feed: Hermes v2 ticks, candles built from them, point-in-time backfill.

Live: the SSE stream, reconnected with backoff; while it is down, ``/latest`` is polled
so the tape keeps moving. Candles come from ticks and leave only once their interval
has closed. Backfill asks Hermes for the first update at or after each grid point
(``/v2/updates/price/{t}``): ticks directly, candles from the two boundary samples of
each interval (open, close, high/low of the two), marked ``approximate`` in ``meta``.
Auth refusals and rate limits are logged and waited out in live mode, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from crunch_engine.feeds.base import (
    Clock,
    FeedAuthError,
    FeedError,
    FeedFetchRequest,
    FeedHandle,
    FeedRateLimitError,
    FeedSink,
    FeedSubscription,
    SystemClock,
    TaskFeedHandle,
    clip,
    deliver,
    floor_time,
    report_error,
)
from crunch_engine.feeds.contracts import MarketRecord
from crunch_engine.feeds.providers.common import CandleBuilder, candle_values
from crunch_engine.feeds.providers.pyth_http import (
    HERMES_BAN_SECONDS,
    HermesClient,
    PythPrice,
    normalise_id,
)
from crunch_engine.feeds.settings import FeedSettings

logger = logging.getLogger(__name__)

PROVIDER = "pyth"
DEFAULT_FEED_IDS = {
    "BTC": "0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",
    "ETH": "0xff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace",
    "SOL": "0xef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d",
}
MAX_POINTS = 5_000


class PythFeed:
    """Pyth Hermes prices as ticks or tick-built candles."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        client: HermesClient,
        clock: Clock,
        feed_ids: Mapping[str, str] | None = None,
        use_stream: bool = True,
        poll_seconds: float = 2.0,
        reconnect_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        candle_grace_seconds: float = 2.0,
    ) -> None:
        self.client = client
        self._clock = clock
        merged = {**DEFAULT_FEED_IDS, **{k.upper(): v for k, v in (feed_ids or {}).items()}}
        self._ids = {asset: normalise_id(feed_id) for asset, feed_id in merged.items()}
        self._use_stream = use_stream
        self._poll = poll_seconds
        self._reconnect = reconnect_seconds
        self._max_backoff = max_backoff_seconds
        self._grace = timedelta(seconds=candle_grace_seconds)
        self.stream_connects = 0

    @classmethod
    def from_settings(cls, settings: FeedSettings, clock: Clock | None = None) -> PythFeed:
        clock = clock or SystemClock()
        key = settings.pyth_api_key.get_secret_value() if settings.pyth_api_key else None
        client = HermesClient(
            base_url=settings.pyth_base_url,
            clock=clock,
            api_key=key or None,
            timeout=settings.request_timeout_seconds,
            max_retries=settings.max_retries,
            backoff_seconds=settings.backoff_seconds,
            max_backoff_seconds=settings.max_backoff_seconds,
            requests_per_10s=settings.pyth_requests_per_10s,
        )
        return cls(
            client=client,
            clock=clock,
            feed_ids=settings.pyth_feed_ids,
            use_stream=settings.pyth_use_stream,
            poll_seconds=settings.pyth_poll_seconds,
            reconnect_seconds=settings.pyth_reconnect_seconds,
            max_backoff_seconds=settings.max_backoff_seconds,
            candle_grace_seconds=settings.pyth_candle_grace_seconds,
        )

    def feed_id(self, asset: str) -> str:
        feed_id = self._ids.get(asset.upper())
        if feed_id is None:
            raise FeedError(
                f"pyth has no feed id for asset {asset!r}; known: {', '.join(sorted(self._ids))}"
                " (add one with CRUNCH_FEED_PYTH_FEED_IDS=ASSET=0x...)"
            )
        return feed_id

    # -- pull ---------------------------------------------------------------------

    async def _sample(self, asset: str, when: datetime) -> PythPrice | None:
        feed_id = self.feed_id(asset)
        for price in await self.client.at(when, [feed_id]):
            if price.feed_id == feed_id:
                return price
        logger.info("feed=pyth asset=%s no update at or after %s", asset, when.isoformat())
        return None

    async def fetch(self, request: FeedFetchRequest) -> Sequence[MarketRecord]:
        asset = request.asset.upper()
        self.feed_id(asset)
        step = request.step
        now = self._clock.now()
        first = floor_time(request.start, step)
        if first < request.start:
            first += step
        last = min(floor_time(request.end, step), floor_time(now, step))
        cap = min(request.limit or MAX_POINTS, MAX_POINTS)
        points: list[datetime] = []
        ts = first
        while ts <= last and len(points) < cap:
            points.append(ts)
            ts += step
        records: list[MarketRecord] = []
        if request.kind == "tick":
            for point in points:
                price = await self._sample(asset, point)
                if price is not None:
                    records.append(self.tick_record(asset, request.granularity, price, point))
        else:
            samples: dict[datetime, PythPrice | None] = {}
            for point in points:
                end = point + step
                if end > now:
                    break
                for boundary in (point, end):
                    if boundary not in samples:
                        samples[boundary] = await self._sample(asset, boundary)
                opening, closing = samples[point], samples[end]
                if opening is None or closing is None:
                    continue
                records.append(
                    MarketRecord(
                        provider=PROVIDER,
                        asset=asset,
                        kind="candle",
                        granularity=request.granularity,
                        ts_event=point,
                        values=candle_values(
                            opening.value,
                            max(opening.value, closing.value),
                            min(opening.value, closing.value),
                            closing.value,
                            0.0,
                        ),
                        meta={"source": "hermes-points", "approximate": True, "samples": 2},
                    )
                )
        logger.info(
            "feed=pyth asset=%s kind=%s fetched=%d points=%d",
            asset,
            request.kind,
            len(records),
            len(points),
        )
        return clip(records, request)

    def tick_record(
        self, asset: str, granularity: str, price: PythPrice, requested: datetime | None = None
    ) -> MarketRecord:
        meta: dict[str, object] = {"conf": price.conf}
        if requested is not None:
            meta["requested"] = requested.isoformat()
        return MarketRecord(
            provider=PROVIDER,
            asset=asset,
            kind="tick",
            granularity=granularity,
            ts_event=price.publish_time,
            values={"price": price.value},
            meta=meta,
        )

    # -- push ---------------------------------------------------------------------

    async def listen(self, subscription: FeedSubscription, sink: FeedSink) -> FeedHandle:
        ids = [self.feed_id(asset) for asset in subscription.assets]
        task = asyncio.create_task(self._run(subscription, sink, ids), name="pyth-listen")
        logger.info(
            "feed=pyth listen assets=%s kind=%s granularity=%s stream=%s",
            ",".join(subscription.assets),
            subscription.kind,
            subscription.granularity,
            self._use_stream,
        )
        return TaskFeedHandle(task, PROVIDER)

    async def _run(self, subscription: FeedSubscription, sink: FeedSink, ids: list[str]) -> None:
        state = _ListenState(self, subscription, sink, self._clock, self._grace)
        flusher = (
            asyncio.create_task(state.flush_forever(), name="pyth-candle-flush")
            if subscription.kind == "candle"
            else None
        )
        backoff = max(self._reconnect, 0.05)
        try:
            while True:
                if not self._use_stream:
                    await self._poll_until(state, sink, ids, None)
                    return
                events = 0
                try:
                    self.stream_connects += 1
                    async for prices in self.client.stream(ids):
                        events += 1
                        backoff = max(self._reconnect, 0.05)
                        await state.handle(prices)
                    if events:
                        logger.info("feed=pyth stream closed by server: reconnecting")
                        continue
                    logger.warning("feed=pyth stream closed without events: backing off")
                    await self._poll_until(state, sink, ids, self._after(backoff))
                except FeedAuthError as exc:
                    await self._trouble(sink, exc, "error")
                    await self._clock.sleep(backoff)  # polling would only be refused too
                except FeedRateLimitError as exc:
                    await self._trouble(sink, exc, "warning")
                    await self._clock.sleep(max(backoff, HERMES_BAN_SECONDS))
                except Exception as exc:  # connection drops, protocol errors, HTTP 5xx
                    await self._trouble(sink, exc, "warning")
                    await self._poll_until(state, sink, ids, self._after(backoff))
                backoff = min(backoff * 2, max(self._max_backoff, 0.05))
        finally:
            if flusher is not None:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher

    def _after(self, seconds: float) -> datetime:
        return self._clock.now() + timedelta(seconds=seconds)

    async def _poll_until(
        self, state: _ListenState, sink: FeedSink, ids: list[str], until: datetime | None
    ) -> None:
        """Fallback while the stream is down: poll ``/latest`` until it is time to retry
        the stream (forever when streaming is disabled)."""
        while True:
            try:
                await state.handle(await self.client.latest(ids))
            except FeedAuthError as exc:
                await self._trouble(sink, exc, "error")
            except FeedError as exc:
                await self._trouble(sink, exc, "warning")
            if until is not None and self._clock.now() >= until:
                return
            await self._clock.sleep(self._poll)

    async def _trouble(self, sink: FeedSink, exc: Exception, level: str) -> None:
        log = logger.error if level == "error" else logger.warning
        log("feed=pyth live: %s: %s", type(exc).__name__, exc)
        await report_error(sink, exc)

    async def aclose(self) -> None:
        await self.client.aclose()


class _ListenState:
    """What one listen remembers: newest tick per asset, the candle builder."""

    def __init__(
        self,
        feed: PythFeed,
        subscription: FeedSubscription,
        sink: FeedSink,
        clock: Clock,
        grace: timedelta,
    ) -> None:
        self._feed = feed
        self._clock = clock
        self._sub = subscription
        self._sink = sink
        self._assets = {feed.feed_id(a): a.upper() for a in subscription.assets}
        self._last: dict[str, datetime] = {}
        self._builder = CandleBuilder(
            provider=PROVIDER,
            granularity=subscription.granularity,
            step=subscription.step,
            grace=grace,
        )
        self._lock = asyncio.Lock()
        self.ticks = 0

    async def handle(self, prices: list[PythPrice]) -> None:
        async with self._lock:
            for price in prices:
                asset = self._assets.get(price.feed_id)
                if asset is None:
                    continue
                previous = self._last.get(asset)
                if previous is not None and price.publish_time <= previous:
                    continue  # the same update again (stream + poll overlap)
                self._last[asset] = price.publish_time
                self.ticks += 1
                if self._sub.kind == "tick":
                    record = self._feed.tick_record(asset, self._sub.granularity, price)
                    await deliver(self._sink, record)
                else:
                    for candle in self._builder.add(asset, price.publish_time, price.value):
                        await deliver(self._sink, candle)
            await self._flush()

    async def _flush(self) -> None:
        for candle in self._builder.close_due(self._clock.now()):
            logger.debug(
                "feed=pyth candle %s %s ticks=%s", candle.asset, candle.ts_event, candle.meta
            )
            await deliver(self._sink, candle)

    async def flush_forever(self) -> None:
        """Close candles on time even when no tick of the next interval arrives."""
        while True:
            await self._clock.sleep(1.0)
            async with self._lock:
                await self._flush()
