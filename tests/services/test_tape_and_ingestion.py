"""Tape-first reads and resumable ingestion on both backends, with a controlled clock."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from crunch_engine.db.database import Database
from crunch_engine.db.tables import MarketRecordRow
from crunch_engine.feeds.base import FeedError, FeedFetchRequest, ManualClock
from crunch_engine.feeds.contracts import MarketRecord
from crunch_engine.feeds.providers.synthetic import SyntheticFeed
from crunch_engine.feeds.tape import RECOVERY_MEMORY, Tape
from crunch_engine.services.ingestion import LiveWriter, MarketIngestion

NOW = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class CountingFeed:
    """The real synthetic feed, counting the fetches it serves (no network involved)."""

    def __init__(self, clock: ManualClock) -> None:
        self.inner = SyntheticFeed(seed=3, clock=clock)
        self.provider = self.inner.provider
        self.requests: list[FeedFetchRequest] = []

    async def fetch(self, request: FeedFetchRequest) -> Sequence[MarketRecord]:
        self.requests.append(request)
        return await self.inner.fetch(request)

    async def listen(self, subscription, sink):  # pragma: no cover - not used here
        return await self.inner.listen(subscription, sink)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_backfill_is_resumable_and_contiguous(database: Database) -> None:
    clock = ManualClock(NOW)
    feed = CountingFeed(clock)
    ingestion = MarketIngestion(database.market, feed, page_size=100, clock=clock)
    first = await ingestion.backfill("BTC", NOW - timedelta(hours=5))
    assert first.stored == 300 and first.pages == 3
    series = ingestion.series("BTC")
    assert await database.market.watermark(series) == datetime(2026, 11, 23, 11, 59, tzinfo=UTC)

    again = await ingestion.backfill("BTC", NOW - timedelta(hours=5))
    assert again.up_to_date and again.stored == 0 and again.pages == 0

    clock.advance(10 * 60)  # ten minutes later: only the new candles are fetched
    caught_up = await ingestion.catch_up("BTC", timedelta(hours=1))
    assert caught_up.stored == 10
    records = await database.market.window(series, NOW - timedelta(hours=6), clock.now())
    stamps = [r.ts_event for r in records]
    assert len(stamps) == 310 == len(set(stamps))
    assert all(b - a == MINUTE for a, b in itertools.pairwise(stamps))


async def test_backfill_never_stores_the_open_candle(database: Database) -> None:
    clock = ManualClock(NOW)
    ingestion = MarketIngestion(database.market, CountingFeed(clock), clock=clock)
    await ingestion.backfill("BTC", NOW - timedelta(minutes=30), NOW + timedelta(hours=1))
    [newest] = await database.market.latest(ingestion.series("BTC"), 1)
    assert newest.ts_event + MINUTE <= NOW  # closed before "now"


async def test_progress_is_reported(database: Database) -> None:
    clock = ManualClock(NOW)
    ingestion = MarketIngestion(database.market, CountingFeed(clock), page_size=60, clock=clock)
    seen = []
    await ingestion.backfill("BTC", NOW - timedelta(hours=3), progress=seen.append)
    assert [p.stored for p in seen] == [60, 120, 180]
    assert seen[-1].fraction == 1.0


async def test_live_writer_fills_the_gap_before_writing(database: Database) -> None:
    clock = ManualClock(NOW)
    feed = CountingFeed(clock)
    ingestion = MarketIngestion(database.market, feed, clock=clock)
    await ingestion.backfill("BTC", NOW - timedelta(hours=1))
    clock.advance(30 * 60)  # a 30-minute disconnect; then live records resume
    resumed_at = datetime(2026, 11, 23, 12, 28, tzinfo=UTC)
    live = await feed.inner.fetch(FeedFetchRequest("BTC", "candle", "1m", resumed_at, resumed_at))
    assert len(live) == 1
    writer = LiveWriter(ingestion)
    for record in live:
        await writer.on_record(record)
    await writer.flush()
    series = ingestion.series("BTC")
    records = await database.market.window(series, NOW - timedelta(hours=2), clock.now())
    stamps = [r.ts_event for r in records]
    assert all(b - a == MINUTE for a, b in itertools.pairwise(stamps)), "gap left"
    assert stamps[-1] == live[-1].ts_event


async def test_tape_first_covered_window_makes_no_feed_call(database: Database) -> None:
    clock = ManualClock(NOW)
    feed = CountingFeed(clock)
    await MarketIngestion(database.market, feed, clock=clock).backfill(
        "BTC", NOW - timedelta(hours=1)
    )
    feed.requests.clear()
    tape = Tape(database.market, provider=feed.provider, feed=feed, clock=clock)
    at = NOW - timedelta(minutes=10, seconds=20)  # 11:50:10 -> the 11:49 candle closed at 11:50
    point = await tape.price_at("BTC", at, horizon_seconds=300)
    assert point is not None and point.ts == datetime(2026, 11, 23, 11, 50, tzinfo=UTC)
    [candle] = await database.market.window(
        tape.series("BTC"), point.ts - MINUTE, point.ts - MINUTE
    )
    assert point.price == candle.values["close"]
    assert feed.requests == [] and tape.recoveries == 0


async def test_tape_first_recovers_an_uncovered_window_once(database: Database) -> None:
    clock = ManualClock(NOW)
    feed = CountingFeed(clock)
    tape = Tape(database.market, provider=feed.provider, feed=feed, clock=clock)
    at = NOW - timedelta(hours=2)
    lookup = await tape.lookup_price("BTC", at, horizon_seconds=300)
    assert lookup.point is not None and lookup.recovered
    assert len(feed.requests) == 1
    again = await tape.lookup_price("BTC", at, horizon_seconds=300)
    assert again.point == lookup.point and not again.recovered
    assert len(feed.requests) == 1  # now served from the database
    assert await database.market.watermark(tape.series("BTC")) is None  # recovery: no watermark


async def test_tape_refuses_stale_or_missing_data(database: Database) -> None:
    clock = ManualClock(NOW)
    feed = CountingFeed(clock)
    ingestion = MarketIngestion(database.market, feed, clock=clock)
    await ingestion.backfill("BTC", NOW - timedelta(hours=1), NOW - timedelta(minutes=30))
    tape = Tape(database.market, provider=feed.provider, clock=clock)  # no feed: no recovery
    lookup = await tape.lookup_price("BTC", NOW, horizon_seconds=300)
    assert lookup.point is None and "no candle of BTC" in (lookup.reason or "")
    future = await tape.lookup_price("BTC", NOW + MINUTE)
    assert future.point is None and "in the future" in (future.reason or "")
    # The max age follows the horizon: a 6-hour horizon tolerates a 30-minute-old price.
    assert await tape.price_at("BTC", NOW, horizon_seconds=6 * 3600) is not None


class BrokenFeed(CountingFeed):
    """A feed whose every fetch fails the way a provider outage does."""

    async def fetch(self, request: FeedFetchRequest) -> Sequence[MarketRecord]:
        self.requests.append(request)
        raise FeedError("binance: HTTP 503 after 6 attempts")


async def test_a_failed_recovery_says_why_and_is_not_retried_within_a_minute(
    database: Database,
) -> None:
    clock = ManualClock(NOW)
    feed = BrokenFeed(clock)
    tape = Tape(database.market, provider=feed.provider, feed=feed, clock=clock)
    at = NOW - timedelta(hours=2)
    lookup = await tape.lookup_price("BTC", at, horizon_seconds=300)
    assert lookup.point is None
    assert "no candle of BTC" in (lookup.reason or "")
    assert "fetching it from the feed failed: binance: HTTP 503" in (lookup.reason or "")
    assert tape.last_miss == lookup.reason
    again = await tape.lookup_price("BTC", at, horizon_seconds=300)
    assert "asked for this window under a minute ago" in (again.reason or "")
    assert len(feed.requests) == 1
    clock.advance(61)
    await tape.lookup_price("BTC", at, horizon_seconds=300)
    assert len(feed.requests) == 2


async def test_remembered_recovery_attempts_stay_bounded(database: Database) -> None:
    clock = ManualClock(NOW)
    feed = BrokenFeed(clock)
    tape = Tape(database.market, provider=feed.provider, feed=feed, clock=clock)
    for minute in range(3 * RECOVERY_MEMORY):  # a long outage: a new window every call
        clock.advance(1)
        await tape.lookup_price("BTC", NOW - timedelta(hours=30, minutes=minute))
    assert len(feed.requests) == 3 * RECOVERY_MEMORY
    assert len(tape._recovery_attempts) <= RECOVERY_MEMORY


async def test_live_writer_fills_a_hole_inside_one_batch(database: Database) -> None:
    """A drop and a reconnect between two flushes: the batch itself has a hole."""
    clock = ManualClock(NOW)
    feed = CountingFeed(clock)
    ingestion = MarketIngestion(database.market, feed, clock=clock)
    await ingestion.backfill("BTC", NOW - timedelta(hours=1))
    clock.advance(30 * 60)
    before = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # right after the watermark
    after = datetime(2026, 11, 23, 12, 20, tzinfo=UTC)  # 19 candles later
    live = [
        *await feed.inner.fetch(FeedFetchRequest("BTC", "candle", "1m", before, before)),
        *await feed.inner.fetch(FeedFetchRequest("BTC", "candle", "1m", after, after)),
    ]
    writer = LiveWriter(ingestion, batch_size=10)
    for record in live:
        await writer.on_record(record)
    await writer.flush()
    records = await database.market.window(
        ingestion.series("BTC"), NOW - timedelta(hours=2), clock.now()
    )
    stamps = [r.ts_event for r in records]
    assert all(b - a == MINUTE for a, b in itertools.pairwise(stamps)), "hole jumped over"
    assert stamps[-1] == after
    assert await database.market.watermark(ingestion.series("BTC")) == after


async def test_read_ahead_serves_forward_lookups_and_never_hides_a_filled_hole(
    database: Database,
) -> None:
    clock = ManualClock(NOW)
    feed = CountingFeed(clock)
    ingestion = MarketIngestion(database.market, feed, clock=clock)
    await ingestion.backfill("BTC", NOW - timedelta(hours=3))
    tape = Tape(database.market, provider=feed.provider, clock=clock)
    series = tape.series("BTC")
    calls = {"window": 0, "last": 0}
    window, last = database.market.window, database.market.last_at_or_before

    async def counted_window(*args, **kwargs):
        calls["window"] += 1
        return await window(*args, **kwargs)

    async def counted_last(*args, **kwargs):
        calls["last"] += 1
        return await last(*args, **kwargs)

    database.market.window = counted_window  # type: ignore[method-assign]
    database.market.last_at_or_before = counted_last  # type: ignore[method-assign]
    start = (NOW - timedelta(hours=2, minutes=30)).replace(second=0)
    for minute in range(100):  # a score worker walking forward through 100 cycles
        at = start + minute * MINUTE
        point = await tape.price_at("BTC", at, horizon_seconds=300)
        [candle] = await window(series, at - MINUTE, at - MINUTE)
        assert point is not None and point.price == candle.values["close"]
    assert calls == {"window": 1, "last": 0}

    # A hole when the chunk is read: the lookup falls back to the database (the older
    # candle, still fresh enough); once the hole is filled the filled candle wins.
    hole = datetime(2026, 11, 23, 11, 40, tzinfo=UTC)
    [held] = await window(series, hole, hole)
    async with database.sessions.begin() as session:
        await session.execute(delete(MarketRecordRow).where(MarketRecordRow.ts_event == hole))
    tape._chunks.clear()
    before = await tape.price_at("BTC", hole + MINUTE, horizon_seconds=3600)
    assert before is not None and before.ts == hole  # the 11:39 candle's close
    assert calls["last"] == 1
    filled = MarketRecord(
        held.provider, held.asset, held.kind, held.granularity, held.ts_event, held.values
    )
    await database.market.upsert([filled], advance_watermark=False)
    after = await tape.price_at("BTC", hole + MINUTE, horizon_seconds=3600)
    assert after is not None and after.ts == hole + MINUTE
    assert after.price == held.values["close"]
