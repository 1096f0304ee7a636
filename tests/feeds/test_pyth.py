"""Pyth Hermes v2 through the real httpx code against a local fake Hermes."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from crunch_engine.feeds.base import (
    FeedAuthError,
    FeedFetchRequest,
    FeedSubscription,
    ManualClock,
    QueueSink,
    SystemClock,
    floor_time,
)
from crunch_engine.feeds.providers.pyth import DEFAULT_FEED_IDS, PythFeed
from crunch_engine.feeds.settings import load_feed_settings
from tests.feeds.conftest import FIXED_NOW
from tests.feeds.fakes.pyth import FakePyth, price_entry, update

BTC = DEFAULT_FEED_IDS["BTC"].removeprefix("0x")
ETH = DEFAULT_FEED_IDS["ETH"].removeprefix("0x")
MINUTE = timedelta(minutes=1)


class RefusalCountingSink(QueueSink):
    """Signals once the feed has reported three refusals."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = asyncio.Event()

    async def on_error(self, error: Exception) -> None:
        await super().on_error(error)
        if len(self.errors) >= 3:
            self.refused.set()


def make_feed(fake: FakePyth, clock: object, **overrides: object) -> PythFeed:
    settings = load_feed_settings(
        {},
        provider="pyth",
        pyth_base_url=fake.base_url,
        pyth_poll_seconds=0.05,
        pyth_reconnect_seconds=0.05,
        backoff_seconds=0.01,
        max_backoff_seconds=0.2,
        **overrides,
    )
    return PythFeed.from_settings(settings, clock=clock)  # type: ignore[arg-type]


def seconds(ts: datetime) -> int:
    return int(ts.timestamp())


def history(start: datetime, minutes: int, every: int = 20) -> list[tuple[int, float]]:
    """A price every ``every`` seconds, rising by 1.25 each time."""
    first = seconds(start)
    return [(first + i * every, 60_000 + i * 1.25) for i in range(minutes * 60 // every)]


async def test_api_key_is_sent_as_bearer(fake_pyth: FakePyth, manual_clock: ManualClock) -> None:
    fake_pyth.api_key = "sekrit"
    fake_pyth.history[BTC] = history(FIXED_NOW - 10 * MINUTE, 10)
    feed = make_feed(fake_pyth, manual_clock, pyth_api_key="sekrit")
    start = FIXED_NOW.replace(second=0) - 3 * MINUTE
    try:
        ticks = await feed.fetch(FeedFetchRequest("BTC", "tick", "1m", start, FIXED_NOW))
    finally:
        await feed.aclose()
    assert {r.headers["Authorization"] for r in fake_pyth.requests} == {"Bearer sekrit"}
    assert len(ticks) == 4
    for tick in ticks:  # the first update at or after each requested minute
        requested = datetime.fromisoformat(tick.meta["requested"])
        assert requested <= tick.ts_event < requested + timedelta(seconds=20)
    assert ticks[0].values["price"] == pytest.approx(
        dict(fake_pyth.history[BTC])[seconds(ticks[0].ts_event)]
    )


async def test_missing_key_401_is_a_clear_error_in_backfill(
    fake_pyth: FakePyth, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake_pyth.api_key = "sekrit"
    feed = make_feed(fake_pyth, manual_clock)
    window = FeedFetchRequest("BTC", "tick", "1m", FIXED_NOW - MINUTE, FIXED_NOW)
    with caplog.at_level(logging.ERROR):
        try:
            with pytest.raises(FeedAuthError, match="set CRUNCH_FEED_PYTH_API_KEY"):
                await feed.fetch(window)
        finally:
            await feed.aclose()
    assert any("HTTP 401" in m for m in caplog.messages)
    assert len(fake_pyth.requests) == 1  # a refusal is not hammered with retries


async def test_candle_backfill_from_boundary_samples(
    fake_pyth: FakePyth, manual_clock: ManualClock
) -> None:
    start = FIXED_NOW.replace(second=0) - 5 * MINUTE
    fake_pyth.history[BTC] = history(start, 6, every=30)
    feed = make_feed(fake_pyth, manual_clock)
    try:
        candles = await feed.fetch(FeedFetchRequest("BTC", "candle", "1m", start, FIXED_NOW))
    finally:
        await feed.aclose()
    assert [c.ts_event for c in candles] == [start + i * MINUTE for i in range(5)]
    prices = dict(fake_pyth.history[BTC])
    for candle in candles:
        assert candle.values["open"] == pytest.approx(prices[seconds(candle.ts_event)])
        assert candle.values["close"] == pytest.approx(prices[seconds(candle.ts_event + MINUTE)])
        assert candle.meta["approximate"] is True
    # 6 boundaries for 5 candles: each shared boundary is asked for once
    assert len(fake_pyth.hits("/v2/updates/price/1")) == 6


async def test_backfill_waits_out_429_and_stays_under_the_rate_limit(
    fake_pyth: FakePyth, manual_clock: ManualClock
) -> None:
    fake_pyth.history[BTC] = history(FIXED_NOW - 10 * MINUTE, 10)
    fake_pyth.inject(429, count=1, retry_after="3", body='{"message": "slow down"}')
    feed = make_feed(fake_pyth, manual_clock, pyth_requests_per_10s=4)
    start = FIXED_NOW.replace(second=0) - 5 * MINUTE
    try:
        ticks = await feed.fetch(FeedFetchRequest("BTC", "tick", "1m", start, FIXED_NOW))
    finally:
        await feed.aclose()
    assert len(ticks) == 6
    assert manual_clock.sleeps[0] == 3.0  # Retry-After honoured
    assert len(manual_clock.sleeps) >= 2  # 7 requests at 4 per 10 s had to wait


async def test_malformed_entries_are_logged_and_skipped(
    fake_pyth: FakePyth, caplog: pytest.LogCaptureFixture
) -> None:
    feed = make_feed(fake_pyth, SystemClock())
    sink = QueueSink()
    now = seconds(datetime.now(UTC))
    with caplog.at_level(logging.WARNING):
        handle = await feed.listen(FeedSubscription(("BTC",), "tick", "1s"), sink)
        try:
            await fake_pyth.wait_for_stream()
            await fake_pyth.send("{not json")
            broken = price_entry(BTC, 1.0, now)
            broken["price"]["price"] = "twelve"
            await fake_pyth.send(update(broken))
            await fake_pyth.send(update(price_entry(BTC, 61_000.5, now + 1)))
            tick = await sink.get()
        finally:
            await handle.stop()
            await feed.aclose()
    assert tick.values == {"price": pytest.approx(61_000.5)}
    assert tick.ts_event == datetime.fromtimestamp(now + 1, UTC)
    assert any("malformed stream event skipped: {not json" in m for m in caplog.messages)
    assert any("malformed price entry skipped" in m and "twelve" in m for m in caplog.messages)


async def test_stream_reconnects_after_the_server_drops_it(fake_pyth: FakePyth) -> None:
    feed = make_feed(fake_pyth, SystemClock())
    sink = QueueSink()
    now = seconds(datetime.now(UTC))
    handle = await feed.listen(FeedSubscription(("BTC", "ETH"), "tick", "1s"), sink)
    try:
        await fake_pyth.wait_for_stream()
        await fake_pyth.send(update(price_entry(BTC, 60_000, now), price_entry(ETH, 3_000, now)))
        first = {(await sink.get()).asset, (await sink.get()).asset}
        await fake_pyth.drop_streams()
        await fake_pyth.wait_for_stream(count=2)
        await fake_pyth.send(update(price_entry(BTC, 60_000, now)))  # a repeat: dropped
        await fake_pyth.send(update(price_entry(BTC, 60_010, now + 1)))
        after = await sink.get()
    finally:
        await handle.stop()
        await feed.aclose()
    assert first == {"BTC", "ETH"}
    assert after.values["price"] == pytest.approx(60_010)
    assert feed.stream_connects == 2
    assert fake_pyth.hits("/stream")[0].query.getall("ids[]") == [
        DEFAULT_FEED_IDS["BTC"],
        DEFAULT_FEED_IDS["ETH"],
    ]


async def test_stream_failure_falls_back_to_polling_latest(fake_pyth: FakePyth) -> None:
    now = seconds(datetime.now(UTC))
    fake_pyth.history[BTC] = [(now, 59_999.0)]
    fake_pyth.inject(503, count=1000, path_contains="/stream")
    feed = make_feed(fake_pyth, SystemClock())
    sink = QueueSink()
    handle = await feed.listen(FeedSubscription(("BTC",), "tick", "1s"), sink)
    try:
        tick = await sink.get()
        fake_pyth.history[BTC].append((now + 2, 60_002.0))
        newer = await sink.get()
    finally:
        await handle.stop()
        await feed.aclose()
    assert tick.values["price"] == pytest.approx(59_999.0)
    assert newer.values["price"] == pytest.approx(60_002.0)
    assert len(fake_pyth.hits("/latest")) >= 2
    assert len(fake_pyth.hits("/stream")) >= 1
    assert any("503" in str(e) for e in sink.errors)


async def test_live_401_is_logged_backed_off_and_recovers(
    fake_pyth: FakePyth, caplog: pytest.LogCaptureFixture
) -> None:
    fake_pyth.api_key = "needed"
    feed = make_feed(fake_pyth, SystemClock())
    sink = RefusalCountingSink()
    now = seconds(datetime.now(UTC))
    with caplog.at_level(logging.ERROR):
        handle = await feed.listen(FeedSubscription(("BTC",), "tick", "1s"), sink)
        try:
            await asyncio.wait_for(sink.refused.wait(), 5.0)
            assert handle.running  # refused, but alive
            fake_pyth.api_key = None  # e.g. the plan was fixed upstream
            await fake_pyth.wait_for_stream()
            await fake_pyth.send(update(price_entry(BTC, 60_000, now)))
            tick = await sink.get()
        finally:
            await handle.stop()
            await feed.aclose()
    assert tick.values["price"] == pytest.approx(60_000)
    assert all(isinstance(e, FeedAuthError) for e in sink.errors)
    assert any("HTTP 401" in m and "CRUNCH_FEED_PYTH_API_KEY" in m for m in caplog.messages)
    assert not fake_pyth.hits("/latest")  # no pointless polling while refused


async def test_candles_are_built_from_ticks_and_emitted_when_closed(fake_pyth: FakePyth) -> None:
    feed = make_feed(fake_pyth, SystemClock())
    sink = QueueSink()
    minute = floor_time(datetime.now(UTC), MINUTE)  # the current minute: open until ticks say
    t0 = seconds(minute)
    handle = await feed.listen(FeedSubscription(("BTC",), "candle", "1m"), sink)
    try:
        await fake_pyth.wait_for_stream()
        for offset, price in [(1, 100.0), (20, 104.0), (40, 98.0), (59, 101.0)]:
            await fake_pyth.send(update(price_entry(BTC, price, t0 + offset)))
        await fake_pyth.send(update(price_entry(BTC, 102.0, t0 + 61)))  # next minute
        candle = await sink.get()
        await fake_pyth.send(update(price_entry(BTC, 1.0, t0 + 30)))  # late: dropped
        await fake_pyth.send(update(price_entry(BTC, 103.0, t0 + 125)))  # two minutes on
        following = await sink.get()
    finally:
        await handle.stop()
        await feed.aclose()
    assert candle.ts_event == minute
    assert candle.values == {
        "open": pytest.approx(100.0),
        "high": pytest.approx(104.0),
        "low": pytest.approx(98.0),
        "close": pytest.approx(101.0),
        "volume": 0.0,
    }
    assert candle.meta["ticks"] == 4
    assert following.ts_event == minute + MINUTE
    assert following.values["open"] == following.values["close"] == pytest.approx(102.0)
    assert following.values["low"] == pytest.approx(102.0)  # the late tick did not leak in
