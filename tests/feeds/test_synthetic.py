"""Synthetic: seeded GBM, the same price for the same (seed, asset, time) everywhere."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta

from crunch_engine.feeds.base import FeedFetchRequest, FeedSubscription, ManualClock, QueueSink
from crunch_engine.feeds.providers.synthetic import SyntheticFeed
from tests.feeds.conftest import FIXED_NOW


def window(asset: str, hours: float, kind: str = "candle", granularity: str = "1m"):
    return FeedFetchRequest(
        asset,
        kind,  # type: ignore[arg-type]
        granularity,
        FIXED_NOW.replace(second=0) - timedelta(hours=hours),
        FIXED_NOW,
    )


async def test_same_seed_same_prices_whatever_the_window(manual_clock: ManualClock) -> None:
    one = SyntheticFeed(seed=11, clock=manual_clock)
    two = SyntheticFeed(seed=11, clock=ManualClock(FIXED_NOW))
    wide = await one.fetch(window("BTC", hours=12))
    narrow = await two.fetch(window("BTC", hours=1))
    assert list(narrow) == list(wide[-len(narrow) :])
    other = await SyntheticFeed(seed=12, clock=manual_clock).fetch(window("BTC", hours=1))
    assert [r.values for r in other] != [r.values for r in narrow]


async def test_candles_are_consistent_and_continuous(manual_clock: ManualClock) -> None:
    feed = SyntheticFeed(seed=3, clock=manual_clock)
    candles = await feed.fetch(window("ETH", hours=3))
    assert len(candles) == 180
    assert candles[-1].ts_event + timedelta(minutes=1) <= FIXED_NOW
    for before, after in itertools.pairwise(candles):
        assert after.values["open"] == before.values["close"]
        v = after.values
        assert v["low"] <= min(v["open"], v["close"]) <= max(v["open"], v["close"]) <= v["high"]
        assert v["volume"] > 0
    ticks = await feed.fetch(window("ETH", hours=3, kind="tick"))
    by_ts = {t.ts_event: t.values["price"] for t in ticks}
    assert by_ts[candles[5].ts_event] == candles[5].values["open"]


async def test_hourly_volatility_matches_sigma(manual_clock: ManualClock) -> None:
    feed = SyntheticFeed(seed=5, sigma=0.0054, clock=manual_clock)
    ticks = await feed.fetch(window("BTC", hours=24 * 60, kind="tick", granularity="1h"))
    returns = [
        math.log(b.values["price"] / a.values["price"]) for a, b in itertools.pairwise(ticks)
    ]
    sd = math.sqrt(sum(r * r for r in returns) / len(returns))
    assert 0.0054 * 0.85 < sd < 0.0054 * 1.15


async def test_listen_emits_each_closed_candle_once(manual_clock: ManualClock) -> None:
    feed = SyntheticFeed(seed=1, clock=manual_clock)
    sink = QueueSink()
    handle = await feed.listen(FeedSubscription(("BTC", "SOL"), "candle", "1m"), sink)
    records = [await sink.get() for _ in range(6)]
    await handle.stop()
    starts = sorted({r.ts_event for r in records})
    assert starts[0] == FIXED_NOW.replace(second=0)
    assert {r.asset for r in records} == {"BTC", "SOL"}
    for record in records:
        assert record.ts_event + timedelta(minutes=1) <= manual_clock.now()
        again = feed.candle(record.asset, record.ts_event, "1m")
        assert again == record
