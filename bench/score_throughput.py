"""Score worker throughput.

N models x M cycles of up/down predictions spread over 7 days (default 1,000 x 1,000 =
1,000,000 predictions; --quick: 100 x 300), on PostgreSQL and SQLite:
  1. scoring: every prediction resolved from the tape, Brier scored, window buckets
     updated (the score worker's own service, batch after batch) -> predictions/s;
  2. a leaderboard rebuild for all models over 7 days of history -> seconds;
  3. one new cycle (N predictions) over that history: scored + leaderboard rebuilt -> s.
Targets: >= 20,000 predictions scored per second on PostgreSQL; the new cycle < 1 s.
Usage: python bench/score_throughput.py [--quick]   (last line: one JSON object)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import print_json_line, print_table

from crunch_engine.competition import load_competition
from crunch_engine.db.database import Database
from crunch_engine.db.migrate import upgrade_database
from crunch_engine.db.repositories.predictions import PredictionInput, PredictionRecord
from crunch_engine.feeds.base import ManualClock
from crunch_engine.feeds.contracts import MarketRecord
from crunch_engine.feeds.tape import Tape
from crunch_engine.services.leaderboard import LeaderboardService
from crunch_engine.services.score import ScoreService
from crunch_engine.settings import load_settings
from crunch_engine.testing.postgres import TemporaryPostgres

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HISTORY = timedelta(days=7)
HORIZON = timedelta(minutes=5)


async def seed(database: Database, models: int, cycles: int) -> list[datetime]:
    """The tape (1-minute candles over the history) and every cycle's predictions."""
    start = NOW - HISTORY - timedelta(hours=1)
    minutes = int((NOW - start).total_seconds() // 60) + 10
    rng = random.Random(5)
    price, candles = 100_000.0, []
    for i in range(minutes):
        price *= 1 + rng.gauss(0, 0.0007)
        candles.append(
            MarketRecord(
                "bench", "BTC", "candle", "1m", start + timedelta(minutes=i), {"close": price}
            )
        )
    for i in range(0, len(candles), 5000):
        await database.market.upsert(candles[i : i + 5000])
    ids = [f"model-{m:04d}" for m in range(models)]
    await database.models.ensure_known(ids)
    step = (HISTORY - HORIZON) / cycles
    times = []
    for c in range(cycles):
        at = (NOW - HISTORY + c * step).replace(second=0, microsecond=0)
        times.append(at)
        cycle = f"bench:{c}"
        rows = [
            PredictionRecord(
                id=f"{cycle}:{model}", input_id=cycle, model_id=model,
                prediction_config_id="btc-up-300s", scope_key="btc-up-300s",
                scope={"asset": "BTC", "horizon_seconds": 300}, status="SUCCESS",
                performed_at=at, resolvable_at=at + HORIZON, output={"p_up": rng.random()},
            )
            for model in ids
        ]  # fmt: skip
        await database.predictions.record_cycle(
            [PredictionInput(cycle, "btc-up-300s", "btc-up-300s", at)], rows
        )
    return times


def services(database: Database, clock: ManualClock) -> tuple[ScoreService, LeaderboardService]:
    settings = load_settings(pack="baseline")
    competition = load_competition(settings, {})
    tape = Tape(database.market, provider="bench", granularity="1m", clock=clock)
    scorer = ScoreService(
        database,
        competition,
        tape,
        settle=timedelta(0),
        unresolved_after=timedelta(days=30),
        batch_size=settings.score_batch_size,  # the worker's default
    )
    return scorer, LeaderboardService(database, competition)


async def run_backend(url: str, models: int, cycles: int) -> dict[str, float]:
    await upgrade_database(url)
    database = Database(url)
    try:
        started = time.perf_counter()
        await seed(database, models, cycles)
        seeded = time.perf_counter() - started
        clock = ManualClock(NOW)
        scorer, boards = services(database, clock)
        total = 0
        started = time.perf_counter()
        while True:
            report = await scorer.score_due(NOW)
            total += report.written
            if report.written < scorer.batch_size:
                break
        scoring = time.perf_counter() - started
        started = time.perf_counter()
        entries = await boards.rebuild(NOW)
        rebuild = time.perf_counter() - started
        assert len(entries["overall"]) == models

        at = NOW - HORIZON - timedelta(minutes=1)
        cycle = "bench:new"
        ids = [f"model-{m:04d}" for m in range(models)]
        rows = [
            PredictionRecord(
                id=f"{cycle}:{model}", input_id=cycle, model_id=model,
                prediction_config_id="btc-up-300s", scope_key="btc-up-300s",
                scope={"asset": "BTC", "horizon_seconds": 300}, status="SUCCESS",
                performed_at=at, resolvable_at=at + HORIZON, output={"p_up": 0.5},
            )
            for model in ids
        ]  # fmt: skip
        await database.predictions.record_cycle(
            [PredictionInput(cycle, "btc-up-300s", "btc-up-300s", at)], rows
        )
        started = time.perf_counter()
        report = await scorer.score_due(NOW)
        await boards.rebuild(NOW + timedelta(seconds=1))
        new_cycle = time.perf_counter() - started
        assert report.scored == models, report
        return {
            "predictions": total,
            "seed_seconds": seeded,
            "scoring_seconds": scoring,
            "predictions_per_s": total / scoring,
            "rebuild_seconds": rebuild,
            "new_cycle_seconds": new_cycle,
        }
    finally:
        await database.close()


async def run(quick: bool) -> dict[str, object]:
    models, cycles = (100, 300) if quick else (1000, 1000)
    figures: dict[str, object] = {"models": models, "cycles": cycles, "quick": quick}
    with tempfile.TemporaryDirectory() as tmp, TemporaryPostgres(durable=True) as server:
        pg = await run_backend(server.url(await server.create_database()), models, cycles)
        sqlite = await run_backend(f"sqlite+aiosqlite:///{Path(tmp) / 'score.db'}", models, cycles)
    for name, result in (("pg", pg), ("sqlite", sqlite)):
        for key, value in result.items():
            figures[f"{name}_{key}"] = value
    figures["target_pg_ge_20k_per_s"] = pg["predictions_per_s"] >= 20_000
    figures["target_new_cycle_lt_1s"] = (
        pg["new_cycle_seconds"] < 1.0 and sqlite["new_cycle_seconds"] < 1.0
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run (under a minute)")
    figures = asyncio.run(run(parser.parse_args().quick))
    print_table(
        f"scoring {figures['models']:,} models x {figures['cycles']:,} cycles over 7 days",
        ["backend", "predictions", "scored/s", "leaderboard rebuild (s)", "new cycle of N (s)"],
        [
            [name, figures[f"{key}_predictions"], figures[f"{key}_predictions_per_s"],
             f"{figures[f'{key}_rebuild_seconds']:.3f}", f"{figures[f'{key}_new_cycle_seconds']:.3f}"]
            for name, key in (("PostgreSQL", "pg"), ("SQLite", "sqlite"))
        ],
    )  # fmt: skip
    print_json_line(figures)


if __name__ == "__main__":
    main()
