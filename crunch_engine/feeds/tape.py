"""Tape-first reads: ground truth and model inputs come from ``market_records``.

The database is asked first. Only when the needed window is not covered does the tape
fetch it from the feed (once), store it, and read again. When data is still missing or
stale, the answer says so explicitly, so scoring leaves the prediction unresolved
instead of scoring it on bad data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from crunch_engine.db.repositories.market import MarketRepository
from crunch_engine.feeds.base import (
    Clock,
    DataFeed,
    FeedError,
    FeedFetchRequest,
    SystemClock,
    floor_time,
)
from crunch_engine.feeds.base import parse_granularity as granularity_step
from crunch_engine.feeds.contracts import SeriesKey, StoredMarketRecord
from crunch_engine.slots.spec import PricePoint
from crunch_engine.timeutil import ensure_utc, to_iso

logger = logging.getLogger(__name__)

RECOVERY_RETRY = timedelta(seconds=60)
RECOVERY_MEMORY = 1024
"""Remembered recovery attempts before stale ones (over a minute old) are dropped."""
DEFAULT_STALENESS_FRACTION = 0.2
READ_AHEAD_CANDLES = 720
"""Closed candles read in one query when a lookup misses the read-ahead chunk; the score
worker walks time forward, so one query serves hundreds of cycles' ground truth."""


@dataclass(frozen=True, slots=True)
class PriceLookup:
    """A price at a point in time, or the reason there is none."""

    point: PricePoint | None
    reason: str | None = None
    recovered: bool = False


def record_price(record: StoredMarketRecord, step: timedelta) -> PricePoint:
    """A candle's close is the price at its close time; a tick is the price at its time."""
    if record.kind == "candle":
        return PricePoint(record.ts_event + step, float(record.values["close"]))
    return PricePoint(record.ts_event, float(record.values["price"]))


class Tape:
    """Reads one provider's series (kind and granularity) for any asset."""

    def __init__(
        self,
        market: MarketRepository,
        *,
        provider: str,
        kind: str = "candle",
        granularity: str = "1m",
        feed: DataFeed | None = None,
        staleness_fraction: float = DEFAULT_STALENESS_FRACTION,
        clock: Clock | None = None,
    ) -> None:
        if not 0 < staleness_fraction <= 1:
            raise ValueError(f"staleness_fraction must be in (0, 1], got {staleness_fraction}")
        self.market = market
        self.provider, self.kind, self.granularity = provider, kind, granularity
        self.step = granularity_step(granularity)
        self.feed = feed
        self.staleness_fraction = staleness_fraction
        self.clock = clock or SystemClock()
        self._recovery_attempts: dict[tuple[str, datetime], datetime] = {}
        self.recoveries = 0
        """How many times the feed was asked for a missing window (for tests and logs)."""
        self._chunks: dict[str, tuple[datetime, datetime, dict[datetime, StoredMarketRecord]]] = {}
        self.last_miss: str | None = None
        """Why the latest lookup found no price: the score worker records it as the
        reason when a resolver built on ``price_at`` answers None."""

    def series(self, asset: str) -> SeriesKey:
        return SeriesKey(self.provider, asset, self.kind, self.granularity)

    async def latest(self, asset: str, limit: int) -> list[StoredMarketRecord]:
        """The newest ``limit`` records of ``asset``, newest first."""
        return await self.market.latest(self.series(asset), limit)

    def max_age(self, horizon_seconds: float | None) -> timedelta:
        """How old the last price may be: a fraction of the horizon, at least one candle."""
        if horizon_seconds is None:
            return self.step
        return max(self.step, timedelta(seconds=self.staleness_fraction * horizon_seconds))

    async def price_at(
        self, asset: str, at: datetime, *, horizon_seconds: float | None = None
    ) -> PricePoint | None:
        return (await self.lookup_price(asset, at, horizon_seconds=horizon_seconds)).point

    async def lookup_price(
        self, asset: str, at: datetime, *, horizon_seconds: float | None = None
    ) -> PriceLookup:
        """The last price known at ``at`` (a closed candle, never a partial one)."""
        at = ensure_utc(at)
        max_age = self.max_age(horizon_seconds)
        if at > self.clock.now():
            return self._miss(f"{to_iso(at)} is in the future")
        found = await self._read(asset, at, max_age)
        if found is not None:
            return PriceLookup(found)
        recovered, note = await self._recover(asset, at, max_age)
        if recovered:
            found = await self._read(asset, at, max_age)
            if found is not None:
                return PriceLookup(found, recovered=True)
        return self._miss(
            f"no {self.kind} of {asset} ({self.provider}, {self.granularity}) with a price "
            f"between {to_iso(at - max_age)} and {to_iso(at)}" + (f"; {note}" if note else "")
        )

    def _miss(self, reason: str) -> PriceLookup:
        self.last_miss = reason
        return PriceLookup(None, reason)

    async def _read(self, asset: str, at: datetime, max_age: timedelta) -> PricePoint | None:
        # A candle opened at ts covers [ts, ts + step): it is closed at ``at`` only when
        # ts + step <= at, and its close is fresh when ts + step >= at - max_age.
        shift = self.step if self.kind == "candle" else timedelta(0)
        if self.kind == "candle":
            cached = await self._read_ahead(asset, floor_time(at - shift, self.step))
            if cached is not None and cached.ts_event >= at - shift - max_age:
                return record_price(cached, self.step)
        record = await self.market.last_at_or_before(
            self.series(asset), at - shift, at - shift - max_age
        )
        return record_price(record, self.step) if record is not None else None

    async def _read_ahead(self, asset: str, slot: datetime) -> StoredMarketRecord | None:
        """The candle opened exactly at ``slot``, from a chunk of closed candles.

        Only an exact slot is answered: it is the newest candle the lookup can want, so
        no hole filled later could change the answer. A missing slot (a hole, or a
        candle stored after the chunk was read) goes to the database as before.
        """
        chunk = self._chunks.get(asset)
        if chunk is not None and chunk[0] <= slot <= chunk[1]:
            return chunk[2].get(slot)
        last_closed = floor_time(self.clock.now(), self.step) - self.step
        end = min(slot + self.step * (READ_AHEAD_CANDLES - 1), last_closed)
        if end < slot:
            return None
        records = await self.market.window(self.series(asset), slot, end)
        self._chunks[asset] = (slot, end, {r.ts_event: r for r in records})
        return self._chunks[asset][2].get(slot)

    def _may_retry(self, key: tuple[str, datetime], now: datetime) -> bool:
        """At most one fetch per window a minute; attempts older than that are forgotten
        so the map stays as small as the number of windows missed in the last minute."""
        last = self._recovery_attempts.get(key)
        if last is not None and now - last < RECOVERY_RETRY:
            return False
        if len(self._recovery_attempts) >= RECOVERY_MEMORY:
            self._recovery_attempts = {
                k: t for k, t in self._recovery_attempts.items() if now - t < RECOVERY_RETRY
            }
        self._recovery_attempts[key] = now
        return True

    async def _recover(
        self, asset: str, at: datetime, max_age: timedelta
    ) -> tuple[bool, str | None]:
        """Fetch the missing window from the feed and store it; at most once a minute.

        Returns whether anything was stored, and a note on why not for the reason."""
        if self.feed is None:
            return False, None
        now = self.clock.now()
        if not self._may_retry((asset, at), now):
            return False, "the feed was asked for this window under a minute ago"
        shift = self.step if self.kind == "candle" else timedelta(0)
        request = FeedFetchRequest(
            asset=asset,
            kind=self.kind,  # type: ignore[arg-type]
            granularity=self.granularity,
            start=at - shift - max_age,
            end=at - shift,
        )
        self.recoveries += 1
        try:
            records = await self.feed.fetch(request)
        except FeedError as exc:
            logger.warning("tape recovery feed=%s asset=%s failed: %s", self.provider, asset, exc)
            return False, f"fetching it from the feed failed: {exc}"
        closed = [r for r in records if r.ts_event + shift <= now]
        if closed:
            # Recovery fills a hole in the past: it must not move the watermark over a gap.
            await self.market.upsert(closed, advance_watermark=False)
        logger.info(
            "tape recovery feed=%s asset=%s window=%s..%s stored=%d",
            self.provider,
            asset,
            to_iso(request.start),
            to_iso(request.end),
            len(closed),
        )
        return bool(closed), None if closed else "the feed had no closed record for it either"
