"""API under load: the report endpoints of a real `crunch serve` on PostgreSQL.

Seeds 1,000 models and 1,000,000 predictions (--quick: 100 x 20,000), 7 days of hourly
leaderboard and per-model score snapshots, and a day of 1-minute candles; starts
`crunch serve --no-workers` on it, then 50 concurrent keep-alive clients for 30 s
(--quick: 5 s) on each of /reports/leaderboard, /reports/models/global (5 models,
24 h, as the web UI's metrics page asks) and /reports/feeds/tail. Clients accept gzip,
as browsers do; "KiB" is the size on the wire.
Targets: leaderboard p99 < 25 ms and >= 1,000 requests/s on these 2-core machines.
Usage: python bench/api_load.py [--quick]   (last line: one JSON object)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from _common import REPO_ROOT, percentile, print_json_line, print_table
from _http_load import run_load

from crunch_engine.db.database import Database
from crunch_engine.db.migrate import upgrade_database
from crunch_engine.db.repositories.predictions import PredictionInput, PredictionRecord
from crunch_engine.feeds.contracts import MarketRecord
from crunch_engine.testing.postgres import TemporaryPostgres, free_port

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
WINDOWS = ("recent", "steady", "anchor")
BROWSER_HEADERS = {"Accept-Encoding": "gzip, deflate, br"}  # what every browser sends


async def seed(url: str, models: int, predictions: int, snapshots: int) -> None:
    await upgrade_database(url)
    database = Database(url)
    rng = random.Random(7)
    try:
        ids = [f"model-{m:04d}" for m in range(models)]
        await database.models.ensure_known(ids)
        candles = [
            MarketRecord(
                "replay", "BTC", "candle", "1m", NOW - timedelta(minutes=i),
                {"open": 1.0, "high": 1.0, "low": 1.0, "close": 100_000 + i, "volume": 1.0},
            )
            for i in range(1440)
        ]  # fmt: skip
        await database.market.upsert(candles)
        cycles = predictions // models
        step = timedelta(days=7) / cycles
        for c in range(cycles):
            at = NOW - timedelta(days=7) + c * step
            cycle = f"load:{c}"
            rows = [
                PredictionRecord(
                    id=f"{cycle}:{m}", input_id=cycle, model_id=m,
                    prediction_config_id="btc-up-30s", scope_key="btc-up-30s",
                    scope={"asset": "BTC", "horizon_seconds": 30}, status="SUCCESS",
                    performed_at=at, resolvable_at=at + timedelta(seconds=30),
                    output={"p_up": rng.random()},
                )
                for m in ids
            ]  # fmt: skip
            await database.predictions.record_cycle(
                [PredictionInput(cycle, "btc-up-30s", "btc-up-30s", at)], rows
            )
        for s in range(snapshots):
            at = NOW - timedelta(hours=snapshots - 1 - s)
            entries = []
            for rank, m in enumerate(ids, start=1):
                entry: dict[str, Any] = {"rank": rank, "model_id": m, "status": "active"}
                for w in WINDOWS:
                    entry[f"score_{w}"] = 0.2 + rank / (10 * models)
                    entry[f"count_{w}"] = 100
                entry["rank_change"] = 0
                entries.append(entry)
            await database.leaderboards.insert("overall", at, entries, meta={})
            await database.scores.insert_model_scores(
                [
                    {
                        "id": f"overall:{e['model_id']}:{s}",
                        "model_id": e["model_id"],
                        "leaderboard_key": "overall",
                        "computed_at": at,
                        "score_payload_jsonb": {k: v for k, v in e.items() if k != "model_id"},
                    }
                    for e in entries
                ]
            )
    finally:
        await database.close()


def start_serve(url: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUNCH_")}
    env.update(
        {
            "CRUNCH_DATABASE_URL": url,
            "CRUNCH_DATA_DIR": data_dir,
            "CRUNCH_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    command = [sys.executable, "-m", "crunch_engine.cli", "serve", "--no-workers"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("crunch serve did not start")


async def measure(port: int, models: int, seconds: float) -> list[dict[str, Any]]:
    end = NOW + timedelta(hours=1)
    start = end - timedelta(hours=24)
    ids = ",".join(f"model-{m:04d}" for m in range(5))
    targets = {
        "leaderboard": "/reports/leaderboard",
        "models_global": f"/reports/models/global?projectIds={ids}"
        f"&start={start.isoformat().replace('+00:00', 'Z')}"
        f"&end={end.isoformat().replace('+00:00', 'Z')}",
        "feeds_tail": "/reports/feeds/tail?source=replay&subject=BTC&kind=candle"
        "&granularity=1m&limit=20",
    }
    rows = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for name, path in targets.items():
            first = await client.get(path)
            assert first.status_code == 200, (path, first.text[:300])
            body = first.json()
            assert body, f"{path} returned no rows"
            if name == "leaderboard":
                assert len(body) == models, len(body)
    for name, path in targets.items():
        result = await run_load(
            "127.0.0.1", port, path, concurrency=50, seconds=seconds, headers=BROWSER_HEADERS
        )
        rows.append(
            {
                "endpoint": name,
                "requests": len(result.latencies_ms),
                "rps": result.requests_per_second,
                "p50_ms": percentile(result.latencies_ms, 50),
                "p99_ms": percentile(result.latencies_ms, 99),
                "non_200": sum(n for s, n in result.statuses.items() if s != 200),
                "errors": result.errors,
                "kib_per_response": result.bytes_received / max(1, len(result.latencies_ms)) / 1024,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 models, 20,000 predictions")
    args = parser.parse_args()
    models, predictions, snapshots, seconds = (
        (100, 20_000, 24, 5.0) if args.quick else (1000, 1_000_000, 168, 30.0)
    )
    with TemporaryPostgres(durable=True) as server:
        url = server.url(asyncio.run(server.create_database()))
        began = time.perf_counter()
        asyncio.run(seed(url, models, predictions, snapshots))
        seeded = time.perf_counter() - began
        print(f"seeded {predictions:,} predictions of {models} models in {seeded:.1f} s")
        port = free_port()
        import tempfile

        with tempfile.TemporaryDirectory() as data_dir:
            process = start_serve(url, port, data_dir)
            try:
                try:
                    import uvloop

                    rows = uvloop.run(measure(port, models, seconds))
                except ImportError:
                    rows = asyncio.run(measure(port, models, seconds))
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    print_table(
        f"API under load: 50 clients, {seconds:g} s per endpoint, PostgreSQL, "
        f"{models} models, {predictions:,} predictions",
        ["endpoint", "requests", "req/s", "p50 ms", "p99 ms", "non-200", "errors", "KiB"],
        [
            [r["endpoint"], r["requests"], r["rps"], r["p50_ms"], r["p99_ms"], r["non_200"],
             r["errors"], r["kib_per_response"]]
            for r in rows
        ],
    )  # fmt: skip
    figures: dict[str, Any] = {
        "bench": "api_load",
        "quick": args.quick,
        "models": models,
        "predictions": predictions,
        "seed_seconds": round(seeded, 1),
    }
    for r in rows:
        figures[f"{r['endpoint']}_rps"] = round(r["rps"], 1)
        figures[f"{r['endpoint']}_p50_ms"] = round(r["p50_ms"], 2)
        figures[f"{r['endpoint']}_p99_ms"] = round(r["p99_ms"], 2)
        figures[f"{r['endpoint']}_non_200"] = r["non_200"] + r["errors"]
    board = rows[0]
    figures["target_leaderboard_p99_lt_25ms"] = board["p99_ms"] < 25
    figures["target_leaderboard_ge_1000_rps"] = board["rps"] >= 1000
    print_json_line(figures)


if __name__ == "__main__":
    main()
