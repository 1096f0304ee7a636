"""The tape on both backends: batched idempotent upserts, newest-first reads, watermarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from crunch_engine.db.database import Database
from crunch_engine.feeds.contracts import MarketRecord, SeriesKey

T0 = datetime(2025, 6, 1, tzinfo=UTC)
SERIES = SeriesKey("replay", "BTC", "candle", "1m")


def candle(minute: int, close: float, series: SeriesKey = SERIES) -> MarketRecord:
    return MarketRecord(
        series.provider,
        series.asset,
        series.kind,
        series.granularity,
        T0 + timedelta(minutes=minute),
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
    )


async def test_upsert_is_idempotent_and_replaces_values(database: Database) -> None:
    assert await database.market.upsert([candle(i, 100.0 + i) for i in range(10)]) == 10
    # The same points again, one with a new value (an open candle that closed).
    await database.market.upsert([candle(i, 100.0 + i) for i in range(9)] + [candle(9, 999.0)])
    assert await database.market.count(SERIES) == 10
    newest = await database.market.latest(SERIES, 1)
    assert newest[0].values["close"] == 999.0


async def test_batch_larger_than_one_statement(database: Database) -> None:
    rows = [candle(i, float(i)) for i in range(10_000)]
    assert await database.market.upsert(rows) == 10_000
    assert await database.market.count(SERIES) == 10_000
    assert await database.market.watermark(SERIES) == T0 + timedelta(minutes=9_999)


async def test_latest_returns_the_newest_rows_newest_first(database: Database) -> None:
    await database.market.upsert([candle(i, float(i)) for i in range(100)])
    latest = await database.market.latest(SERIES, 5)
    assert [r.values["close"] for r in latest] == [99.0, 98.0, 97.0, 96.0, 95.0]


async def test_window_is_inclusive_and_oldest_first(database: Database) -> None:
    await database.market.upsert([candle(i, float(i)) for i in range(20)])
    rows = await database.market.window(
        SERIES, T0 + timedelta(minutes=5), T0 + timedelta(minutes=8)
    )
    assert [r.values["close"] for r in rows] == [5.0, 6.0, 7.0, 8.0]


async def test_timestamps_come_back_utc_aware(database: Database) -> None:
    paris = timezone(timedelta(hours=2))
    record = MarketRecord(
        "replay", "BTC", "candle", "1m", datetime(2025, 6, 1, 2, 0, tzinfo=paris), {"close": 1.0}
    )
    await database.market.upsert([record])
    [stored] = await database.market.latest(SERIES, 1)
    assert stored.ts_event == T0
    assert stored.ts_event.utcoffset() == timedelta(0)
    assert stored.ts_ingested is not None and stored.ts_ingested.tzinfo is not None


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        MarketRecord("replay", "BTC", "candle", "1m", datetime(2025, 6, 1), {"close": 1.0})


async def test_watermark_advances_with_rows_and_never_moves_back(database: Database) -> None:
    assert await database.market.watermark(SERIES) is None
    await database.market.upsert([candle(i, 1.0) for i in range(10)])
    assert await database.market.watermark(SERIES) == T0 + timedelta(minutes=9)
    await database.market.upsert([candle(3, 2.0)])  # a late correction of an older point
    assert await database.market.watermark(SERIES) == T0 + timedelta(minutes=9)


async def test_failed_batch_writes_nothing(database: Database) -> None:
    good = [candle(i, 1.0) for i in range(5)]
    bad = MarketRecord(
        "replay", "BTC", "candle", "1m", T0 + timedelta(minutes=6), {"close": float("nan")}
    )
    object.__setattr__(bad, "values", {"close": object()})  # not JSON-serialisable
    with pytest.raises(Exception):  # noqa: B017 - any driver error
        await database.market.upsert([*good, bad])
    assert await database.market.count(SERIES) == 0
    assert await database.market.watermark(SERIES) is None


async def test_status_and_ttl_by_market_time(database: Database) -> None:
    other = SeriesKey("replay", "ADA", "candle", "1m")
    await database.market.upsert([candle(i, 1.0) for i in range(60)])
    await database.market.upsert([candle(i, 1.0, other) for i in range(30)])
    status = {s.asset: s for s in await database.market.status()}
    assert status["BTC"].record_count == 60
    assert status["BTC"].oldest_ts == T0
    assert status["BTC"].newest_ts == T0 + timedelta(minutes=59)
    assert status["BTC"].watermark_ts == T0 + timedelta(minutes=59)
    assert status["ADA"].record_count == 30

    deleted = await database.market.delete_before(T0 + timedelta(minutes=40))
    assert deleted == 40 + 30
    assert await database.market.count(SERIES) == 20


async def test_postgres_copy_falls_back_when_a_row_appeared_meanwhile(
    postgres_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COPY fast path runs after a probe found no stored key; if another writer
    stores one in between, the COPY fails on the key and the batch is upserted instead."""
    from crunch_engine.db.repositories import pg_copy

    database = postgres_database
    await database.market.upsert([candle(5, 1.0)])  # "the other writer"
    probes = []

    async def probe_misses(session, batch):
        probes.append(len(batch))
        return False

    monkeypatch.setattr(pg_copy, "_any_stored", probe_misses)
    await database.market.upsert([candle(i, 2.0) for i in range(10)])
    assert probes == [10]
    assert await database.market.count(SERIES) == 10
    stored = {r.ts_event: r.values["close"] for r in await database.market.latest(SERIES, 10)}
    assert set(stored.values()) == {2.0}  # the conflicting point was updated, not lost
