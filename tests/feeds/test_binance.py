"""Binance through the real python-binance SDK (and the httpx fallback) against a
local fake of the spot API and its kline websocket."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import timedelta

import pytest

from crunch_engine.feeds.base import (
    FeedFetchRequest,
    FeedRateLimitError,
    FeedSubscription,
    ManualClock,
    QueueSink,
    floor_time,
)
from crunch_engine.feeds.providers.binance import BinanceFeed
from crunch_engine.feeds.settings import load_feed_settings
from crunch_engine.timeutil import from_epoch_ms, to_epoch_ms
from tests.feeds.conftest import FIXED_NOW
from tests.feeds.fakes.binance import FakeBinance, kline_event, real_klines
from tests.feeds.fakes.clocks import JumpClock

MINUTE = timedelta(minutes=1)
MINUTE_MS = 60_000


def make_feed(fake: FakeBinance, clock: object, **overrides: object) -> BinanceFeed:
    settings = load_feed_settings(
        {},
        provider="binance",
        binance_base_url=fake.base_url,
        binance_ws_url=fake.ws_url,
        binance_poll_seconds=0.05,
        binance_ws_retry_seconds=0.2,
        backoff_seconds=0.01,
        max_backoff_seconds=0.05,
        **overrides,
    )
    return BinanceFeed.from_settings(settings, clock=clock)  # type: ignore[arg-type]


def serve_fixed(fake: FakeBinance, clock: ManualClock, minutes_back: int) -> None:
    """Real candles up to and including the still-open one at ``clock.now()``."""
    open_now = to_epoch_ms(floor_time(clock.now(), MINUTE))
    first = open_now - minutes_back * MINUTE_MS
    fake.now_ms = lambda: to_epoch_ms(clock.now())
    fake.klines["BTCUSDT"] = real_klines("BTC", first, minutes_back + 1)


@pytest.mark.parametrize("use_sdk", [True, False], ids=["python-binance", "httpx"])
async def test_backfill_pages_without_gaps_duplicates_or_open_candle(
    fake_binance: FakeBinance, manual_clock: ManualClock, use_sdk: bool
) -> None:
    serve_fixed(fake_binance, manual_clock, minutes_back=2600)
    feed = make_feed(fake_binance, manual_clock, binance_use_sdk=use_sdk)
    start = FIXED_NOW.replace(second=0) - 2500 * MINUTE
    try:
        records = await feed.fetch(FeedFetchRequest("BTC", "candle", "1m", start, FIXED_NOW))
    finally:
        await feed.aclose()
    assert feed.rest.transport == ("sdk" if use_sdk else "httpx")
    assert len(records) == 2500
    assert records[0].ts_event == start
    assert records[-1].ts_event == FIXED_NOW.replace(second=0) - MINUTE  # 12:00 is still open
    assert all(b.ts_event - a.ts_event == MINUTE for a, b in itertools.pairwise(records))
    pages = fake_binance.hits("/klines")
    assert len(pages) == 3
    assert [int(p.query["limit"]) for p in pages] == [1000, 1000, 1000]
    starts = [int(p.query["startTime"]) for p in pages]
    assert starts == [to_epoch_ms(start + i * 1000 * MINUTE) for i in range(3)]
    served = {row[0]: row for row in fake_binance.klines["BTCUSDT"]}
    for record in records[::97]:
        row = served[to_epoch_ms(record.ts_event)]
        assert record.values["close"] == float(row[4])
        assert record.values["volume"] == float(row[5])


async def test_backfill_honours_retry_after_on_429_and_418(
    fake_binance: FakeBinance, manual_clock: ManualClock
) -> None:
    serve_fixed(fake_binance, manual_clock, minutes_back=30)
    fake_binance.inject(429, count=2, retry_after="7")
    fake_binance.inject(418, count=1, body='{"code": -1003, "msg": "banned"}')
    feed = make_feed(fake_binance, manual_clock)
    window = FeedFetchRequest("BTC", "candle", "1m", FIXED_NOW - 20 * MINUTE, FIXED_NOW)
    try:
        records = await feed.fetch(window)
    finally:
        await feed.aclose()
    assert len(records) == 20
    assert manual_clock.sleeps == [7.0, 7.0, 60.0]
    assert len(fake_binance.hits("/klines")) == 4


async def test_persistent_429_gives_a_clear_error(
    fake_binance: FakeBinance, manual_clock: ManualClock
) -> None:
    serve_fixed(fake_binance, manual_clock, minutes_back=5)
    fake_binance.inject(429, count=100)
    feed = make_feed(fake_binance, manual_clock, max_retries=2, binance_use_sdk=False)
    window = FeedFetchRequest("BTC", "candle", "1m", FIXED_NOW - 3 * MINUTE, FIXED_NOW)
    try:
        with pytest.raises(FeedRateLimitError, match="still rate limited after 3 attempts"):
            await feed.fetch(window)
    finally:
        await feed.aclose()
    assert manual_clock.sleeps == [0.01, 0.02]  # exponential backoff without Retry-After


async def test_used_weight_near_the_limit_waits_for_the_next_minute(
    fake_binance: FakeBinance, manual_clock: ManualClock
) -> None:
    serve_fixed(fake_binance, manual_clock, minutes_back=1500)
    fake_binance.used_weight = 4800  # the first answer reports 4802 of 6000
    feed = make_feed(fake_binance, manual_clock)
    start = FIXED_NOW.replace(second=0) - 1400 * MINUTE
    try:
        records = await feed.fetch(FeedFetchRequest("BTC", "candle", "1m", start, FIXED_NOW))
    finally:
        await feed.aclose()
    assert manual_clock.sleeps[0] == 30.0  # 12:00:30 -> the weight window resets at 12:01
    # while it waited, the 12:00 candle closed, so the second page includes it
    assert len(records) == 1401
    assert records[-1].ts_event == FIXED_NOW.replace(second=0)
    assert feed.rest.used_weight is not None and feed.rest.used_weight >= 4802


async def test_malformed_kline_is_logged_and_skipped(
    fake_binance: FakeBinance, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    serve_fixed(fake_binance, manual_clock, minutes_back=10)
    bad = to_epoch_ms(FIXED_NOW.replace(second=0) - 5 * MINUTE)
    fake_binance.malformed_opens.add(bad)
    feed = make_feed(fake_binance, manual_clock)
    window = FeedFetchRequest("BTC", "candle", "1m", FIXED_NOW - 10 * MINUTE, FIXED_NOW)
    with caplog.at_level(logging.WARNING):
        try:
            records = await feed.fetch(window)
        finally:
            await feed.aclose()
    assert from_epoch_ms(bad) not in {r.ts_event for r in records}
    assert len(records) == 8
    assert any("malformed kline skipped" in m and "broken" in m for m in caplog.messages)


async def test_sdk_failure_falls_back_to_httpx(
    fake_binance: FakeBinance, manual_clock: ManualClock
) -> None:
    serve_fixed(fake_binance, manual_clock, minutes_back=10)
    feed = make_feed(fake_binance, manual_clock)
    # the SDK is pointed at a closed port: aiohttp fails, httpx (right URL) answers
    feed.rest.sdk_client().API_URL = "http://127.0.0.1:9/api"
    start = FIXED_NOW.replace(second=0) - 5 * MINUTE
    window = FeedFetchRequest("BTC", "candle", "1m", start, FIXED_NOW)
    try:
        records = await feed.fetch(window)
    finally:
        await feed.aclose()
    assert len(records) == 5
    assert feed.rest.transport == "httpx"


async def test_ticks_from_kline_closes(
    fake_binance: FakeBinance, manual_clock: ManualClock
) -> None:
    serve_fixed(fake_binance, manual_clock, minutes_back=10)
    feed = make_feed(fake_binance, manual_clock)
    window = FeedFetchRequest("BTC", "tick", "1m", FIXED_NOW - 5 * MINUTE, FIXED_NOW)
    try:
        ticks = await feed.fetch(window)
    finally:
        await feed.aclose()
    served = {row[0]: row for row in fake_binance.klines["BTCUSDT"]}
    assert [t.ts_event for t in ticks] == [
        FIXED_NOW.replace(second=0) - i * MINUTE for i in range(4, -1, -1)
    ]
    for tick in ticks:
        assert tick.values["price"] == float(served[to_epoch_ms(tick.ts_event - MINUTE)][4])


def serve_live(fake: FakeBinance, clock: JumpClock) -> None:
    open_now = to_epoch_ms(floor_time(clock.now(), MINUTE))
    fake.now_ms = clock.now_ms
    fake.klines["BTCUSDT"] = real_klines("BTC", open_now - 200 * MINUTE_MS, 400)
    fake.klines["ADAUSDT"] = real_klines("ADA", open_now - 200 * MINUTE_MS, 400)


def current_row(fake: FakeBinance, symbol: str, clock: JumpClock) -> list:
    open_now = to_epoch_ms(floor_time(clock.now(), MINUTE))
    return next(r for r in fake.klines[symbol] if r[0] == open_now)


async def test_websocket_stores_only_closed_klines(
    fake_binance: FakeBinance, jump_clock: JumpClock
) -> None:
    serve_live(fake_binance, jump_clock)
    feed = make_feed(fake_binance, jump_clock)
    sink = QueueSink()
    handle = await feed.listen(FeedSubscription(("BTC", "ADA"), "candle", "1m"), sink)
    try:
        await fake_binance.wait_for_ws()
        first = {(await sink.get()).asset, (await sink.get()).asset}  # REST: newest closed
        assert first == {"BTC", "ADA"}
        row = current_row(fake_binance, "BTCUSDT", jump_clock)
        still_open = list(row)
        still_open[4] = "1.0"  # an intermediate update must never reach the tape
        await fake_binance.push(kline_event("BTCUSDT", still_open, final=False))
        await fake_binance.push(kline_event("BTCUSDT", row, final=True))
        record = await sink.get()
        assert fake_binance.hits("/stream")[0].query["streams"] == (
            "btcusdt@kline_1m/adausdt@kline_1m"
        )
    finally:
        await handle.stop()
        await feed.aclose()
    assert record.asset == "BTC"
    assert record.ts_event == from_epoch_ms(row[0])
    assert record.values["close"] == float(row[4])
    assert record.meta["source"] == "websocket"
    assert sink.queue.empty()
    assert not handle.running


async def test_websocket_down_falls_back_to_rest_polling_in_order(
    fake_binance: FakeBinance, jump_clock: JumpClock
) -> None:
    serve_live(fake_binance, jump_clock)
    fake_binance.reject_ws = True
    feed = make_feed(fake_binance, jump_clock)
    sink = QueueSink()
    handle = await feed.listen(FeedSubscription(("BTC",), "candle", "1m"), sink)
    try:
        first = await sink.get()
        jump_clock.jump(180)  # three minutes pass while the websocket is refused
        later = [await sink.get() for _ in range(3)]
    finally:
        await handle.stop()
        await feed.aclose()
    assert [r.ts_event for r in later] == [first.ts_event + i * MINUTE for i in (1, 2, 3)]
    assert all("source" not in r.meta for r in [first, *later])  # all from REST
    assert len(fake_binance.hits("/stream")) >= 1  # the websocket was tried
    assert sink.errors  # and the failure was reported to the sink


async def test_websocket_disconnect_is_covered_by_rest_and_reconnects(
    fake_binance: FakeBinance, jump_clock: JumpClock
) -> None:
    serve_live(fake_binance, jump_clock)
    feed = make_feed(fake_binance, jump_clock)
    sink = QueueSink()
    handle = await feed.listen(FeedSubscription(("BTC",), "candle", "1m"), sink)
    try:
        await fake_binance.wait_for_ws()
        first = await sink.get()
        await fake_binance.drop_ws()
        jump_clock.jump(120)  # two candles close while the socket is down
        gap = [await sink.get(), await sink.get()]
        await fake_binance.wait_for_ws(count=2, within=8.0)  # the SDK reconnects by itself
        row = current_row(fake_binance, "BTCUSDT", jump_clock)
        await fake_binance.push(kline_event("BTCUSDT", row, final=True))
        live = await sink.get()
    finally:
        await handle.stop()
        await feed.aclose()
    assert [r.ts_event for r in gap] == [first.ts_event + MINUTE, first.ts_event + 2 * MINUTE]
    assert live.ts_event == first.ts_event + 3 * MINUTE
    assert live.meta["source"] == "websocket"


async def test_live_ticks_poll_the_ticker(fake_binance: FakeBinance, jump_clock: JumpClock) -> None:
    serve_live(fake_binance, jump_clock)
    fake_binance.ticker_prices["BTCUSDT"] = "104000.5"
    feed = make_feed(fake_binance, jump_clock)
    sink = QueueSink()
    handle = await feed.listen(FeedSubscription(("BTC",), "tick", "1s"), sink)
    try:
        ticks = [await sink.get(), await sink.get()]
    finally:
        await handle.stop()
        await feed.aclose()
    assert [t.values for t in ticks] == [{"price": 104000.5}] * 2
    assert ticks[0].ts_event < ticks[1].ts_event
    await asyncio.sleep(0)
