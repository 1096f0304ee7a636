"""Shared pieces: ticks to candles, throttling, Retry-After, request validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crunch_engine.feeds.base import FeedFetchRequest, ManualClock, parse_granularity
from crunch_engine.feeds.providers.common import CandleBuilder, RateLimiter, parse_retry_after

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_candle_builder_closes_on_next_interval_and_on_time() -> None:
    builder = CandleBuilder("pyth", "1m", timedelta(minutes=1), grace=timedelta(seconds=2))
    assert builder.add("BTC", at(1), 10.0) == []
    assert builder.add("BTC", at(30), 12.0) == []
    assert builder.add("BTC", at(20), 9.0) == []  # out of order inside the minute: kept
    assert builder.add("ETH", at(5), 1.0) == []
    assert builder.close_due(at(61)) == []  # within the grace period
    closed = builder.add("BTC", at(65), 11.0)
    assert len(closed) == 1
    candle = closed[0]
    assert (candle.asset, candle.ts_event) == ("BTC", T0)
    assert candle.values == {"open": 10.0, "high": 12.0, "low": 9.0, "close": 12.0, "volume": 0.0}
    assert builder.add("BTC", at(50), 99.0) == []  # late for an emitted minute
    assert builder.dropped_late == 1
    due = builder.close_due(at(62))
    assert [(c.asset, c.ts_event) for c in due] == [("ETH", T0)]
    assert [c.ts_event for c in builder.close_due(at(122))] == [T0 + timedelta(minutes=1)]


def test_a_candle_that_starts_mid_interval_is_left_for_the_backfill() -> None:
    """The first tick after start (or after an outage) at :37 cannot make a true candle."""
    builder = CandleBuilder("pyth", "1m", timedelta(minutes=1), grace=timedelta(seconds=2))
    assert builder.add("BTC", at(37), 10.0) == []
    assert builder.add("BTC", at(50), 12.0) == []
    assert builder.add("BTC", at(60.4), 11.0) == []  # the partial minute is not emitted
    assert builder.skipped_partial == 1
    closed = builder.add("BTC", at(121), 13.0)  # a tick just after the boundary: whole
    assert [c.ts_event for c in closed] == [T0 + timedelta(minutes=1)]
    assert closed[0].values["open"] == 11.0
    # an outage: nothing for minutes, then a tick 30 s into an interval
    assert builder.close_due(at(183)) != []
    assert builder.add("BTC", at(630), 14.0) == []
    assert builder.close_due(at(663)) == []
    assert builder.skipped_partial == 2


async def test_rate_limiter_spreads_calls() -> None:
    clock = ManualClock(T0)
    limiter = RateLimiter(3, 10.0, clock)
    for _ in range(7):
        await limiter.acquire()
    assert clock.sleeps == [10.0, 10.0]
    assert clock.now() == at(20)


def test_retry_after_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Mon, 05 Jan 2026 12:00:30 GMT", now=T0) == 30.0
    assert parse_retry_after("soon") is None


def test_requests_validate_their_input() -> None:
    assert parse_granularity("5m") == timedelta(minutes=5)
    with pytest.raises(ValueError, match="invalid granularity"):
        parse_granularity("1w")
    with pytest.raises(ValueError, match="ends before it starts"):
        FeedFetchRequest("BTC", "candle", "1m", at(60), at(0))
    with pytest.raises(ValueError, match="naive datetime"):
        FeedFetchRequest("BTC", "candle", "1m", datetime(2026, 1, 1), at(0))
