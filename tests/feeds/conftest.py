"""Fixtures for the feed tests: fake provider servers on 127.0.0.1, clocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from crunch_engine.feeds.base import ManualClock
from tests.feeds.fakes.binance import FakeBinance
from tests.feeds.fakes.clocks import JumpClock
from tests.feeds.fakes.pyth import FakePyth

FIXED_NOW = datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(FIXED_NOW)


@pytest.fixture
def jump_clock() -> JumpClock:
    # Start 5 s into a minute: tests jump whole minutes, so a test has ~55 s of real
    # time before a candle closes by itself (which would race what the test drives).
    now = datetime.now(UTC)
    return JumpClock(timedelta(seconds=5 - now.second - now.microsecond / 1e6))


@pytest.fixture
async def fake_binance() -> AsyncIterator[FakeBinance]:
    server = FakeBinance()
    await server.start()
    try:
        yield server
    finally:
        await server.drop_ws()
        await server.close()


@pytest.fixture
async def fake_pyth() -> AsyncIterator[FakePyth]:
    server = FakePyth()
    await server.start()
    try:
        yield server
    finally:
        await server.drop_streams()
        await server.close()
