"""The real score worker process, SIGKILLed in the middle of a backlog and restarted:
every prediction scored exactly once, window buckets equal to the stored scores."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crunch_engine.db.database import Database
from crunch_engine.db.repositories.predictions import PredictionInput, PredictionRecord
from crunch_engine.db.tables import PredictionRow, PredictionScoreRow, ScoreBucketRow
from crunch_engine.feeds.contracts import MarketRecord

pytestmark = pytest.mark.slow
MODELS, CYCLES = 200, 60


async def seed(database: Database) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(hours=3)
    await database.market.upsert(
        [
            MarketRecord(
                "synthetic",
                "BTC",
                "candle",
                "1m",
                start + timedelta(minutes=i),
                {"close": 100.0 + (i % 7)},
            )
            for i in range(180)
        ]
    )
    ids = [f"m{m:03d}" for m in range(MODELS)]
    await database.models.ensure_known(ids)
    for c in range(CYCLES):
        at = start + timedelta(minutes=c + 5)
        cycle = f"c{c}"
        await database.predictions.record_cycle(
            [PredictionInput(cycle, "btc-up-300s", "btc-up-300s", at)],
            [
                PredictionRecord(
                    id=f"{cycle}:{m}", input_id=cycle, model_id=m,
                    prediction_config_id="btc-up-300s", scope_key="btc-up-300s",
                    scope={"asset": "BTC", "horizon_seconds": 300},
                    status="SUCCESS" if i % 10 else "ABSENT",
                    performed_at=at, resolvable_at=at + timedelta(minutes=5),
                    output={"p_up": (i % 100) / 100} if i % 10 else None,
                )
                for i, m in enumerate(ids)
            ],
        )  # fmt: skip
    return now


def start(command: list[str], env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


async def test_sigkill_mid_backlog_then_restart(
    database: Database, database_url: str, crunch_env: dict, tmp_path: Path
) -> None:
    await seed(database)
    env = {
        **crunch_env,
        "CRUNCH_DATABASE_URL": database_url,
        "CRUNCH_FEED_PROVIDER": "synthetic",
        "CRUNCH_SCORE_BATCH_SIZE": "500",
        "CRUNCH_SCORE_INTERVAL_SECONDS": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "score.log").open("ab")
    command = [sys.executable, "-m", "crunch_engine.workers.score"]
    total = MODELS * CYCLES
    worker = start(command, env, log)
    try:
        deadline = time.monotonic() + 60
        while await database.predictions.count(score_status="SCORED") < 1500:
            assert time.monotonic() < deadline, (tmp_path / "score.log").read_text()[-3000:]
            await asyncio.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        scored_at_kill = await database.predictions.count(score_status="SCORED")
        assert scored_at_kill < total, "the kill should land mid-backlog"

        worker = start(command, env, log)
        deadline = time.monotonic() + 120
        while await database.predictions.count(score_status="PENDING"):
            assert time.monotonic() < deadline, (tmp_path / "score.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        while await database.leaderboards.latest("overall") is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(20)
    assert worker.returncode == 0
    async with database.sessions() as session:
        scored = await session.scalar(
            select(func.count())
            .select_from(PredictionScoreRow)
            .where(PredictionScoreRow.score_status == "SCORED")
        )
        bucket_count = await session.scalar(select(func.sum(ScoreBucketRow.count)))
        bucket_total = await session.scalar(select(func.sum(ScoreBucketRow.total)))
        stored_total = await session.scalar(select(func.sum(PredictionScoreRow.score_value)))
        penalties = await session.scalar(
            select(func.count())
            .select_from(PredictionRow)
            .join(PredictionScoreRow, PredictionScoreRow.prediction_id == PredictionRow.id)
            .where(PredictionScoreRow.score_value == 1.0, PredictionRow.status == "ABSENT")
        )
    assert scored == total
    assert bucket_count == total  # nothing double-counted, nothing lost
    assert bucket_total == pytest.approx(stored_total)
    assert penalties == total // 10
    board = await database.leaderboards.latest("overall")
    assert board is not None and len(board.entries_jsonb) == MODELS
