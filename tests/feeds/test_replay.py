"""Replay: the bundled real candles, shifted to look live, looping without jumps."""

from __future__ import annotations

import csv
import itertools
from datetime import timedelta
from importlib.resources import files

import pytest

from crunch_engine.feeds.base import (
    FeedError,
    FeedFetchRequest,
    FeedSubscription,
    ManualClock,
    QueueSink,
)
from crunch_engine.feeds.providers.replay import ReplayFeed
from tests.feeds.conftest import FIXED_NOW

MINUTE = timedelta(minutes=1)


def csv_rows(name: str) -> list[dict[str, str]]:
    text = (files("crunch_engine.feeds") / "data" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def request(asset: str, hours: float, end_offset: timedelta = timedelta(), **kw: object):
    end = FIXED_NOW + end_offset
    start = FIXED_NOW.replace(second=0) - timedelta(hours=hours)
    return FeedFetchRequest(asset, "candle", "1m", start, end, **kw)  # type: ignore[arg-type]


def test_bundled_data_and_licence_ship_with_the_package() -> None:
    data = files("crunch_engine.feeds") / "data"
    assert len(csv_rows("BTCUSDT_1m.csv")) == 500
    assert len(csv_rows("ADAUSDT_1m.csv")) == 500
    assert "MIT" in (data / "LICENSE-tradetropy.txt").read_text(encoding="utf-8")


async def test_newest_candle_closes_just_before_now_and_is_the_last_real_row(
    manual_clock: ManualClock,
) -> None:
    feed = ReplayFeed(speed=60.0, clock=manual_clock)
    records = await feed.fetch(request("BTC", hours=2))
    newest = records[-1]
    assert newest.ts_event == FIXED_NOW.replace(second=0) - MINUTE
    assert newest.ts_event + MINUTE <= manual_clock.now() < newest.ts_event + 2 * MINUTE
    last_row = csv_rows("BTCUSDT_1m.csv")[-1]
    assert newest.values == {
        "open": float(last_row["open"]),
        "high": float(last_row["high"]),
        "low": float(last_row["low"]),
        "close": float(last_row["close"]),
        "volume": float(last_row["volume"]),
    }
    assert len(records) == 120  # 10:00 .. 11:59; the 12:00 candle is still open
    gaps = {b.ts_event - a.ts_event for a, b in itertools.pairwise(records)}
    assert gaps == {MINUTE}


async def test_long_backfill_loops_backwards_without_jumps(manual_clock: ManualClock) -> None:
    feed = ReplayFeed(clock=manual_clock)
    records = await feed.fetch(request("ADA", hours=24))
    assert len(records) == 1440  # far more than the 500 bundled rows
    for before, after in itertools.pairwise(records):
        assert after.ts_event - before.ts_event == MINUTE
        assert after.values["open"] == pytest.approx(before.values["close"], rel=1e-12)
        v = after.values
        assert v["low"] <= min(v["open"], v["close"]) <= max(v["open"], v["close"]) <= v["high"]


async def test_the_seam_is_continuous_and_the_next_cycle_is_rescaled(
    manual_clock: ManualClock,
) -> None:
    feed = ReplayFeed(speed=1.0, clock=manual_clock)
    anchor = feed.anchor
    last_real = feed.candle("BTC", anchor - MINUTE)
    first_next = feed.candle("BTC", anchor)
    first_real = feed.candle("BTC", anchor - 500 * MINUTE)
    assert first_next.values["open"] == pytest.approx(last_real.values["close"], rel=1e-12)
    ratio = last_real.values["close"] / first_real.values["open"]
    assert first_next.values["close"] == pytest.approx(first_real.values["close"] * ratio)
    assert first_next.values["volume"] == first_real.values["volume"]


async def test_replay_is_deterministic_for_an_anchor(manual_clock: ManualClock) -> None:
    one = ReplayFeed(anchor=FIXED_NOW, clock=manual_clock)
    two = ReplayFeed(anchor=FIXED_NOW, clock=ManualClock(FIXED_NOW))
    window = request("BTC", hours=10)
    assert await one.fetch(window) == await two.fetch(window)


async def test_coarser_candles_aggregate_the_minutes(manual_clock: ManualClock) -> None:
    feed = ReplayFeed(clock=manual_clock)
    start = FIXED_NOW - timedelta(hours=1)
    fives = await feed.fetch(FeedFetchRequest("BTC", "candle", "5m", start, FIXED_NOW))
    ones = await feed.fetch(FeedFetchRequest("BTC", "candle", "1m", start, FIXED_NOW))
    first = fives[0]
    minutes = [r for r in ones if first.ts_event <= r.ts_event < first.ts_event + 5 * MINUTE]
    assert len(minutes) == 5
    assert first.values["open"] == minutes[0].values["open"]
    assert first.values["close"] == minutes[-1].values["close"]
    assert first.values["high"] == max(m.values["high"] for m in minutes)


async def test_fetch_respects_limit_and_unknown_assets_fail_clearly(
    manual_clock: ManualClock,
) -> None:
    feed = ReplayFeed(clock=manual_clock)
    limited = await feed.fetch(request("BTC", hours=5, limit=10))
    assert len(limited) == 10
    assert limited[0].ts_event == FIXED_NOW.replace(second=0) - timedelta(hours=5)
    with pytest.raises(FeedError, match="bundled assets: BTC, ADA"):
        await feed.fetch(request("DOGE", hours=1))


async def test_listen_emits_closed_candles_as_accelerated_time_passes(
    manual_clock: ManualClock,
) -> None:
    feed = ReplayFeed(speed=60.0, clock=manual_clock)
    sink = QueueSink()
    handle = await feed.listen(FeedSubscription(("BTC", "ADA"), "candle", "1m"), sink)
    records = [await sink.get() for _ in range(10)]
    await handle.stop()
    assert not handle.running
    btc = [r for r in records if r.asset == "BTC"]
    assert [r.ts_event for r in btc] == [feed.anchor + i * MINUTE for i in range(5)]
    # at 60x one market minute is one wall second: each candle waited for its close
    for record in records:
        assert feed.to_wall(record.ts_event + MINUTE) <= manual_clock.now()
    assert feed.to_wall(btc[-1].ts_event + MINUTE) - FIXED_NOW < timedelta(seconds=6)
    backfill = await feed.fetch(
        FeedFetchRequest("BTC", "candle", "1m", feed.anchor, feed.anchor + 4 * MINUTE)
    )
    assert list(backfill) == btc  # live and backfill agree on every value


async def test_listen_ticks_follow_the_candle_closes(manual_clock: ManualClock) -> None:
    feed = ReplayFeed(speed=120.0, clock=manual_clock)
    sink = QueueSink()
    handle = await feed.listen(FeedSubscription(("BTC",), "tick", "1m"), sink)
    ticks = [await sink.get() for _ in range(3)]
    await handle.stop()
    for tick in ticks:
        candle = feed.candle("BTC", tick.ts_event - MINUTE)
        assert tick.values == {"price": candle.values["close"]}
