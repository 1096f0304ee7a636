"""Replay: the bundled real candles laid on the wall clock, one real minute per slot,
the same tape in every process, looping ping-pong without jumps or drift."""

from __future__ import annotations

import asyncio
import csv
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.resources import files

import pytest

from crunch_engine.feeds.base import (
    FeedError,
    FeedFetchRequest,
    FeedSubscription,
    ManualClock,
    QueueSink,
)
from crunch_engine.feeds.contracts import MarketRecord
from crunch_engine.feeds.providers.replay import DEFAULT_ANCHOR, MAX_RECORDS, ReplayFeed
from crunch_engine.feeds.settings import load_feed_settings
from tests.feeds.conftest import FIXED_NOW

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
N = 500


def csv_rows(name: str) -> list[dict[str, float]]:
    text = (files("crunch_engine.feeds") / "data" / name).read_text(encoding="utf-8")
    fields = ("open", "high", "low", "close", "volume")
    return [{k: float(line[k]) for k in fields} for line in csv.DictReader(text.splitlines())]


BTC_ROWS = csv_rows("BTCUSDT_1m.csv")


def window(
    asset: str, granularity: str, start: datetime, end: datetime, **kw: object
) -> FeedFetchRequest:
    return FeedFetchRequest(asset, "candle", granularity, start, end, **kw)  # type: ignore[arg-type]


def reversed_row(row: dict[str, float]) -> dict[str, float]:
    return {**row, "open": row["close"], "close": row["open"]}


def test_bundled_data_and_licence_ship_with_the_package() -> None:
    data = files("crunch_engine.feeds") / "data"
    assert len(BTC_ROWS) == N
    assert len(csv_rows("ADAUSDT_1m.csv")) == N
    assert "MIT" in (data / "LICENSE-tradetropy.txt").read_text(encoding="utf-8")


async def test_feeds_created_at_different_times_agree() -> None:
    early_clock = ManualClock(FIXED_NOW - timedelta(hours=3))
    early = ReplayFeed(clock=early_clock)
    early_clock.set(FIXED_NOW)
    late = ReplayFeed(clock=ManualClock(FIXED_NOW))
    for granularity in ("1s", "5s", "1m"):
        request = window("BTC", granularity, FIXED_NOW - timedelta(minutes=30), FIXED_NOW)
        one, two = await early.fetch(request), await late.fetch(request)
        assert one and list(one) == list(two)
        assert {r.granularity for r in one} == {granularity}
    assert early.anchor == late.anchor == DEFAULT_ANCHOR


async def test_anchor_override_shifts_the_mapping(manual_clock: ManualClock) -> None:
    settings = load_feed_settings({"CRUNCH_FEED_REPLAY_ANCHOR": "2025-03-01T00:07:00Z"})
    shifted = ReplayFeed.from_settings(settings, clock=manual_clock)
    default = ReplayFeed(clock=manual_clock)
    assert shifted.anchor == DEFAULT_ANCHOR.replace(month=3, minute=7)
    assert shifted.slot(shifted.anchor, "1m") == 0
    assert shifted.candle("BTC", shifted.anchor).values == BTC_ROWS[0]
    offset = default.slot(shifted.anchor, "1m")
    at = FIXED_NOW.replace(second=0)
    assert default.slot(at, "1m") - shifted.slot(at, "1m") == offset
    assert shifted.candle("BTC", at).values == default.candle("BTC", at - offset * MINUTE).values


@pytest.mark.parametrize(("granularity", "step"), [("1m", MINUTE), ("5s", 5 * SECOND)])
def test_slot_k_plays_row_k(granularity: str, step: timedelta, manual_clock: ManualClock) -> None:
    feed = ReplayFeed(clock=manual_clock)
    for k in (0, 1, 2, 250, N - 1):
        record = feed.candle("BTC", DEFAULT_ANCHOR + k * step, granularity)
        assert feed.slot(record.ts_event, granularity) == k
        assert record.ts_event == DEFAULT_ANCHOR + k * step
        assert record.granularity == granularity and record.kind == "candle"
        assert record.values == BTC_ROWS[k]
    # a whole period later the same row plays again
    again = feed.candle("BTC", DEFAULT_ANCHOR + (2 * N + 3) * step, granularity)
    assert again.values == BTC_ROWS[3]


def test_ping_pong_turns_join_and_backward_candles_are_reversed(
    manual_clock: ManualClock,
) -> None:
    feed = ReplayFeed(clock=manual_clock)

    def at(k: int) -> dict[str, float]:
        return feed.candle("BTC", DEFAULT_ANCHOR + k * MINUTE).values

    assert at(N)["open"] == at(N - 1)["close"]  # the forward -> backward turn
    assert at(2 * N)["open"] == at(2 * N - 1)["close"]  # the backward -> forward turn
    for j in (0, 1, 123, N - 1):
        assert at(2 * N - 1 - j) == reversed_row(BTC_ROWS[j])
    assert at(-1) == reversed_row(BTC_ROWS[0])  # before the anchor: the same tape
    # every neighbour joins exactly across both turns and before the anchor
    for k in range(-3, 2 * N + 3):
        assert at(k + 1)["open"] == at(k)["close"]


async def test_prices_stay_in_range_after_many_periods() -> None:
    k = 10_000_001
    start = DEFAULT_ANCHOR + k * SECOND
    feed = ReplayFeed(clock=ManualClock(start + 10 * MINUTE))
    assert feed.slot(start, "1s") == k
    records = await feed.fetch(window("BTC", "1s", start, start + 10 * MINUTE))
    assert len(records) == 600
    low = min(row["low"] for row in BTC_ROWS)
    high = max(row["high"] for row in BTC_ROWS)
    # 10_000_001 % 1000 == 1: the second row, forward, unscaled
    assert records[0].values == BTC_ROWS[1]
    for before, after in itertools.pairwise(records):
        assert after.values["open"] == before.values["close"]
    for record in records:
        v = record.values
        assert low <= v["low"] <= min(v["open"], v["close"])
        assert max(v["open"], v["close"]) <= v["high"] <= high


@pytest.mark.parametrize(("offset", "expected"), [(0.0, 720), (2.5, 719)])
async def test_fetch_returns_only_closed_contiguous_slots(offset: float, expected: int) -> None:
    now = FIXED_NOW + timedelta(seconds=offset)
    feed = ReplayFeed(clock=ManualClock(now))
    step = 5 * SECOND
    start = now - timedelta(hours=1)
    records = await feed.fetch(window("ADA", "5s", start, now))
    assert len(records) == expected
    assert records[0].ts_event >= start > records[0].ts_event - step
    assert all(r.ts_event.timestamp() % 5 == 0 for r in records)
    for before, after in itertools.pairwise(records):
        assert after.ts_event - before.ts_event == step
    assert all(r.ts_event + step <= now for r in records)
    assert records[-1].ts_event + 2 * step > now  # the next slot is still open
    future = await feed.fetch(window("ADA", "5s", now - MINUTE, now + timedelta(hours=1)))
    assert future[-1] == records[-1]


async def test_fetch_respects_limit_and_caps_huge_windows(manual_clock: ManualClock) -> None:
    feed = ReplayFeed(clock=manual_clock)
    start = FIXED_NOW - timedelta(days=5)
    limited = await feed.fetch(window("BTC", "1s", start, FIXED_NOW, limit=10))
    assert [r.ts_event for r in limited] == [start + i * SECOND for i in range(10)]
    big = await feed.fetch(window("BTC", "1s", FIXED_NOW - timedelta(hours=6), FIXED_NOW))
    assert len(big) == 6 * 3600
    with pytest.raises(FeedError, match=f"over the limit of {MAX_RECORDS}"):
        await feed.fetch(window("BTC", "1s", start, FIXED_NOW))


async def test_unknown_assets_fail_clearly(manual_clock: ManualClock) -> None:
    feed = ReplayFeed(clock=manual_clock)
    with pytest.raises(FeedError, match="'DOGE'; bundled assets: BTC, ADA"):
        await feed.fetch(window("DOGE", "1m", FIXED_NOW - MINUTE * 5, FIXED_NOW))
    with pytest.raises(FeedError, match="bundled assets: BTC, ADA"):
        await feed.listen(FeedSubscription(("BTC", "DOGE"), "candle", "5s"), QueueSink())


@dataclass
class StampingSink(QueueSink):
    """Remembers the clock time at which each record arrived."""

    clock: ManualClock | None = None
    arrivals: list[tuple[MarketRecord, datetime]] = field(default_factory=list)

    async def on_record(self, record: MarketRecord) -> None:
        assert self.clock is not None
        self.arrivals.append((record, self.clock.now()))
        await super().on_record(record)


async def test_listen_emits_each_closed_slot_once(manual_clock: ManualClock) -> None:
    feed = ReplayFeed(clock=manual_clock)
    step = 5 * SECOND
    sink = StampingSink(clock=manual_clock)
    handle = await feed.listen(FeedSubscription(("BTC", "ADA"), "candle", "5s"), sink)
    for _ in range(6):
        await sink.get()
    manual_clock.advance(60)  # a stall: the loop catches up with every missed slot
    for _ in range(40):
        await sink.get()
    await handle.stop()
    assert not handle.running
    emitted = len(sink.arrivals)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(sink.arrivals) == emitted  # nothing arrives after stop

    for record, arrived in sink.arrivals:
        assert record.ts_event + step <= arrived  # never a partial candle
        assert record.granularity == "5s"
    for asset in ("BTC", "ADA"):
        live = [r for r, _ in sink.arrivals if r.asset == asset]
        # the first live slot opens at 12:00:30: 12:00:25 had closed before listen
        assert live[0].ts_event == FIXED_NOW
        for before, after in itertools.pairwise(live):
            assert after.ts_event - before.ts_event == step  # no gap, no duplicate
            assert after.values["open"] == before.values["close"]
        backfill = await feed.fetch(window(asset, "5s", live[0].ts_event, live[-1].ts_event))
        assert list(backfill) == live  # live and backfill agree on every value


async def test_listen_ticks_carry_the_close_of_the_slot_that_ended(
    manual_clock: ManualClock,
) -> None:
    feed = ReplayFeed(clock=manual_clock)
    sink = StampingSink(clock=manual_clock)
    handle = await feed.listen(FeedSubscription(("BTC",), "tick", "1s"), sink)
    ticks = [await sink.get() for _ in range(5)]
    await handle.stop()
    assert [t.ts_event for t in ticks] == [FIXED_NOW + (i + 1) * SECOND for i in range(5)]
    for tick, arrived in sink.arrivals:
        assert tick.ts_event <= arrived
        ended = feed.candle("BTC", tick.ts_event - SECOND, "1s")
        assert tick.values == {"price": ended.values["close"]}
        assert tick.values["price"] == feed.candle("BTC", tick.ts_event, "1s").values["open"]
