"""Pieces several providers share: candle values, ticks-to-candles, backoff, throttling."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from crunch_engine.feeds.base import Clock, FeedSink, FeedSubscription, deliver, floor_time
from crunch_engine.feeds.contracts import MarketRecord

logger = logging.getLogger(__name__)


def candle_values(
    open_: float, high: float, low: float, close: float, volume: float
) -> dict[str, float]:
    """The candle value dict the tape stores (see ``contracts``)."""
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def shorten(payload: Any, limit: int = 300) -> str:
    """A payload cut down for a log line, so a malformed answer is visible but bounded."""
    text = payload if isinstance(payload, str) else repr(payload)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if now is None or when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff (``base * 2**attempt``, capped), or the server's own
    ``Retry-After`` when it gave one: the server knows when the ban lifts."""
    if retry_after is not None:
        return retry_after
    return min(cap, base * (2**attempt))


class RateLimiter:
    """At most ``count`` calls per ``period`` seconds (e.g. Hermes: 30 per 10 s per IP).

    Staying under the public limit matters more than speed: going over it costs a 60 s
    ban. Uses the feed's clock, so tests see the waits without sleeping.
    """

    def __init__(self, count: int, period: float, clock: Clock) -> None:
        self._count = count
        self._period = period
        self._clock = clock
        self._calls: deque[float] = deque()

    async def acquire(self) -> None:
        while True:
            now = self._clock.now().timestamp()
            while self._calls and now - self._calls[0] >= self._period:
                self._calls.popleft()
            if len(self._calls) < self._count:
                self._calls.append(now)
                return
            await self._clock.sleep(self._period - (now - self._calls[0]))


@dataclass
class _Bucket:
    start: datetime
    open: float
    high: float
    low: float
    close: float
    ticks: int = 1
    last_tick: datetime | None = None
    partial: bool = False


@dataclass
class CandleBuilder:
    """Builds candles of one granularity from ticks, per asset.

    A candle leaves the builder only once its interval has closed: when a tick of a
    later interval arrives, or when ``close_due`` sees the clock past the end plus a
    grace period for late ticks. Ticks for an already emitted interval are dropped,
    since the emitted candle is final on the tape.

    A candle whose first tick came well into its interval with no tick just before
    it (the first after start or after an outage) would be stored as final with a
    wrong open, high and low; it is skipped instead, so the tape has a hole there
    that the live writer's gap repair backfills from the provider.
    """

    provider: str
    granularity: str
    step: timedelta
    grace: timedelta = timedelta(seconds=2)
    _open: dict[str, _Bucket] = field(default_factory=dict)
    _emitted_until: dict[str, datetime] = field(default_factory=dict)
    partial_after: timedelta = timedelta(seconds=5)
    """Ticks this close to an interval's start (or to its end before) count as covering it."""
    dropped_late: int = 0
    skipped_partial: int = 0
    _last_tick: dict[str, datetime] = field(default_factory=dict)

    def add(self, asset: str, ts: datetime, price: float) -> list[MarketRecord]:
        """Feed one tick; returns the candles it closed (usually none or one)."""
        start = floor_time(ts, self.step)
        done = self._emitted_until.get(asset)
        if done is not None and start < done:
            self.dropped_late += 1
            logger.debug("feed=%s asset=%s late tick at %s dropped", self.provider, asset, ts)
            return []
        closed: list[MarketRecord] = []
        bucket = self._open.get(asset)
        if bucket is not None and bucket.start < start:
            closed.extend(self._finish(asset, bucket))
            bucket = None
        previous = self._last_tick.get(asset)
        if previous is None or ts > previous:
            self._last_tick[asset] = ts
        if bucket is None:
            uncovered = previous is None or start - previous > self.partial_after
            partial = uncovered and ts - start > self.partial_after
            self._open[asset] = _Bucket(start, price, price, price, price, 1, ts, partial)
        else:
            bucket.high = max(bucket.high, price)
            bucket.low = min(bucket.low, price)
            if bucket.last_tick is None or ts >= bucket.last_tick:
                bucket.close = price
                bucket.last_tick = ts
            bucket.ticks += 1
        return closed

    def close_due(self, now: datetime) -> list[MarketRecord]:
        """Candles whose interval ended more than ``grace`` before ``now``."""
        closed = []
        for asset, bucket in list(self._open.items()):
            if bucket.start + self.step + self.grace <= now:
                closed.extend(self._finish(asset, bucket))
        return closed

    def _finish(self, asset: str, bucket: _Bucket) -> list[MarketRecord]:
        del self._open[asset]
        self._emitted_until[asset] = bucket.start + self.step
        if bucket.partial:
            self.skipped_partial += 1
            logger.info(
                "feed=%s asset=%s candle %s skipped: no tick in its first %ss "
                "(left for the gap backfill)",
                self.provider,
                asset,
                bucket.start.isoformat(),
                self.partial_after.total_seconds(),
            )
            return []
        return [
            MarketRecord(
                provider=self.provider,
                asset=asset,
                kind="candle",
                granularity=self.granularity,
                ts_event=bucket.start,
                values=candle_values(bucket.open, bucket.high, bucket.low, bucket.close, 0.0),
                meta={"source": "ticks", "ticks": bucket.ticks},
            )
        ]


async def run_clocked(
    *,
    provider: str,
    subscription: FeedSubscription,
    sink: FeedSink,
    clock: Clock,
    market_now: Callable[[], datetime],
    to_wall: Callable[[datetime], datetime],
    make_record: Callable[[str, datetime], MarketRecord],
) -> None:
    """The live loop of a feed that computes its tape from time (replay, synthetic).

    Starts after the newest record that already exists (history is ``fetch``'s job),
    emits each record once its interval has closed in market time, and sleeps on the
    injected clock until the next one is due. After a stall (suspended laptop) it
    catches up with every record it missed, in order.
    """
    step = subscription.step
    is_candle = subscription.kind == "candle"

    def newest() -> datetime:
        now = floor_time(market_now(), step)
        return now - step if is_candle else now

    last = newest()
    while True:
        emitted = 0
        ts = last + step
        top = newest()
        while ts <= top:
            for asset in subscription.assets:
                emitted += await deliver(sink, make_record(asset, ts))
            last = ts
            ts += step
        if emitted:
            logger.debug("feed=%s emitted=%d newest=%s", provider, emitted, last.isoformat())
        due = last + step + (step if is_candle else timedelta())
        wait = (to_wall(due) - clock.now()).total_seconds()
        await clock.sleep(max(wait, 0.001))
