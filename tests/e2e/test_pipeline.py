"""End to end: market-data, orchestrator, predict and score workers as real processes on
the offline replay feed with the demo models. A leaderboard appears in which every demo
model is ranked, and every score matches an independent recomputation from the stored
predictions and the tape."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crunch_engine.db.database import Database
from crunch_engine.db.repositories.prediction_views import select_views, to_views
from crunch_engine.db.tables import MarketRecordRow
from crunch_engine.testing.postgres import free_port

pytestmark = pytest.mark.slow

WORKERS = ("market_data", "orchestrator", "predict", "score")
DEMO_MODELS = {"momentum", "mean-reversion", "noisy"}
STEP = timedelta(seconds=5)
SPEC = {
    "scheduled_prediction_configs": [
        {
            "scope_key": "btc-up-30s",
            "scope_template": {"horizon_seconds": 15, "step_seconds": 5},
            "schedule": {"every_seconds": 5},
        }
    ]
}


def start(worker: str, env: dict[str, str], logs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", f"crunch_engine.workers.{worker}"],
        env=env,
        stdout=(logs / f"{worker}.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def price_at(candles: dict, at) -> float | None:
    """The close of the last 5 s candle closed at ``at`` (and at most 5 s old)."""
    opened = at - STEP
    key = opened - timedelta(seconds=opened.timestamp() % 5)
    candle = candles.get(key)
    return candle["close"] if candle is not None else None


async def test_the_whole_loop_ranks_every_demo_model(
    database: Database, database_url: str, crunch_env: dict, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    env = {
        **crunch_env,
        "CRUNCH_DATABASE_URL": database_url,
        "CRUNCH_DATA_DIR": str(tmp_path / "data"),
        "CRUNCH_SPEC": str(spec),
        "CRUNCH_ORCHESTRATOR_PORT": str(free_port()),
        "CRUNCH_MARKET_BACKFILL_HOURS": "0.5",
        "CRUNCH_SCORE_INTERVAL_SECONDS": "1",
        "CRUNCH_SCORE_SETTLE_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    processes = [start(worker, env, tmp_path) for worker in WORKERS]
    try:
        deadline = time.monotonic() + 150
        while True:
            for worker, process in zip(WORKERS, processes, strict=True):
                assert process.poll() is None, (tmp_path / f"{worker}.log").read_text()[-3000:]
            board = await database.leaderboards.latest("overall")
            counts = {
                e["model_id"]: e["count_recent"] for e in (board.entries_jsonb if board else [])
            }
            if set(counts) >= DEMO_MODELS and all(counts[m] >= 3 for m in DEMO_MODELS):
                break
            if time.monotonic() > deadline:
                logs = {w: (tmp_path / f"{w}.log").read_text()[-1500:] for w in WORKERS}
                raise AssertionError(f"no full leaderboard: {counts}\n{logs}")
            await asyncio.sleep(1)
    finally:
        stop_all(processes)
    assert all(p.returncode == 0 for p in processes), [p.returncode for p in processes]

    async with database.sessions() as session:
        tape = {
            row.ts_event: row.values_jsonb
            for row in (
                await session.scalars(select(MarketRecordRow).where(MarketRecordRow.asset == "BTC"))
            ).all()
        }
        scored = [
            view
            for view in to_views(await session.execute(select_views()))
            if view.score_status == "SCORED"
        ]
    assert scored
    board = await database.leaderboards.latest("overall")
    assert board is not None
    in_board: dict[str, list[float]] = {}
    for row in scored:
        if row.scored_at <= board.created_at:  # what the newest snapshot was built from
            in_board.setdefault(row.model_id, []).append(row.score_value)
        if row.status != "SUCCESS":
            assert row.score_value == 1.0 and row.score_success is False
            continue
        start_price = price_at(tape, row.performed_at)
        end_price = price_at(tape, row.resolvable_at)
        assert start_price is not None and end_price is not None
        expected = (
            row.inference_output_jsonb["p_up"] - (1.0 if end_price > start_price else 0.0)
        ) ** 2
        assert row.score_value == pytest.approx(expected), row.id
    for entry in board.entries_jsonb:
        values = in_board.get(entry["model_id"], [])
        assert entry["count_recent"] == len(values), entry
        if values:
            assert entry["score_recent"] == pytest.approx(sum(values) / len(values)), entry
    ranked = [e["score_recent"] for e in board.entries_jsonb if e["score_recent"] is not None]
    assert ranked == sorted(ranked)  # Brier: lower is better
    ranks = [e["rank"] for e in board.entries_jsonb]
    assert ranks == list(range(1, len(ranks) + 1))
