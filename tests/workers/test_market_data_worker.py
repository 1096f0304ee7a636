"""The real market-data worker process, SIGKILLed mid-backfill and mid-live, then restarted:
no duplicate rows, no gap, and a watermark that matches what is stored."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crunch_engine.db.database import Database
from crunch_engine.feeds.contracts import SeriesKey

pytestmark = pytest.mark.slow

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "crunch_engine.workers.market_data"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_hard(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


async def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


async def assert_contiguous(database: Database, series: SeriesKey, step: timedelta) -> int:
    rows = await database.market.window(series, EPOCH, FAR_FUTURE)
    stamps = [r.ts_event for r in rows]
    assert len(stamps) == len(set(stamps)), "duplicate rows"
    gaps = [(a, b) for a, b in itertools.pairwise(stamps) if b - a != step]
    assert not gaps, f"gaps in the tape: {gaps[:3]}"
    watermark = await database.market.watermark(series)
    assert watermark == stamps[-1], f"watermark {watermark} != newest row {stamps[-1]}"
    return len(stamps)


def worker_env(crunch_env: dict[str, str], database_url: str, **extra: str) -> dict[str, str]:
    return {
        **crunch_env,
        "CRUNCH_DATABASE_URL": database_url,
        "CRUNCH_FEED_PROVIDER": "synthetic",
        "CRUNCH_FEED_ASSETS": "BTC",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


async def test_sigkill_during_backfill_then_restart(
    database: Database, database_url: str, crunch_env: dict, tmp_path: Path
) -> None:
    env = worker_env(crunch_env, database_url, CRUNCH_MARKET_BACKFILL_HOURS="168")
    series = SeriesKey("synthetic", "BTC", "candle", "1m")
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:

        async def some_pages_committed() -> bool:
            return await database.market.count(series) >= 2000

        await wait_for(some_pages_committed, 60, "the first backfill pages")
        kill_hard(worker)
        partial = await database.market.count(series)
        assert 0 < partial < 10_000, f"the kill should land mid-backfill, had {partial} rows"
        await assert_contiguous(database, series, timedelta(minutes=1))

        worker = start_worker(env, log)

        async def listening() -> bool:
            return b"listening" in log.read_bytes()

        await wait_for(listening, 120, "the restarted worker to finish its backfill")
    finally:
        if worker.poll() is None:
            kill_hard(worker)
    total = await assert_contiguous(database, series, timedelta(minutes=1))
    assert total >= 7 * 24 * 60 - 1, f"7 days of minutes expected, got {total}"


async def test_sigkill_during_live_ingestion_then_restart(
    database: Database, database_url: str, crunch_env: dict, tmp_path: Path
) -> None:
    step = timedelta(seconds=5)
    env = worker_env(
        crunch_env, database_url, CRUNCH_FEED_GRANULARITY="5s", CRUNCH_MARKET_BACKFILL_HOURS="0.5"
    )
    series = SeriesKey("synthetic", "BTC", "candle", "5s")
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:

        async def live_rows(after) -> bool:
            watermark = await database.market.watermark(series)
            return watermark is not None and watermark > after

        await wait_for(lambda: database.market.watermark(series), 60, "the backfill")
        backfilled = await database.market.watermark(series)
        await wait_for(lambda: live_rows(backfilled + step), 30, "two live candles")
        kill_hard(worker)
        killed_at = await database.market.watermark(series)
        await asyncio.sleep(12)  # the worker is down: two or three candles are missed

        worker = start_worker(env, log)
        await wait_for(lambda: live_rows(killed_at + 4 * step), 60, "live ingestion after restart")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=20)
    assert worker.returncode == 0, log.read_text()[-2000:]  # SIGTERM stops it cleanly
    await assert_contiguous(database, series, step)
