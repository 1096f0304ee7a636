"""Predict cycle round trip: from the cycle's input built to every prediction committed.

N local model processes (our model server, the demo momentum model), our ModelClient,
the engine's PredictService (tick to all, predict to all, validation, one batched write),
on SQLite and PostgreSQL; p50 / p99 over >= 100 cycles per N. In the same run, the
fan-out of one ``predict`` to N models for our stack against the reference stack
(CrunchDAO's client 0.14.0 + model servers 0.4.2), from bench/_fanout.py.

It also prints each cycle's two parts (the model calls, the write) and the CPU a cycle
costs: the model servers' per model and the engine's, so the floor that CPU sets on this
machine's cores is visible next to the latency.

Targets (issue 4): 100 models p50 <= 20 ms and p99 <= 50 ms end to end; our fan-out at
least 2x faster than the reference stack at 100 models.
The tape holds 120 five-second candles of BTC; the tick input is the newest 60 (close
only by default, OHLCV with ``--full-candles``).
Usage: python bench/predict_roundtrip.py [--quick] [--no-reference] [--full-candles]
(last line: one JSON object)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _fanout
import psutil
from _common import percentile, print_json_line, print_table

from crunch_engine.competition import load_competition
from crunch_engine.db.database import Database
from crunch_engine.db.migrate import upgrade_database
from crunch_engine.feeds.contracts import MarketRecord
from crunch_engine.feeds.tape import Tape
from crunch_engine.models.client import ModelClient
from crunch_engine.services.predict import PredictService
from crunch_engine.settings import load_settings
from crunch_engine.testing.postgres import TemporaryPostgres
from tests.models.interop.servers import BASE_CLASS, start_our_server, stop, wait_port


def candle_values(i: int, full: bool) -> dict[str, float]:
    close = 100.0 + i % 9
    if not full:
        return {"close": close}
    return {"open": close - 0.5, "high": close + 1.0, "low": close - 1.0, "close": close,
            "volume": 12.5 + i}  # fmt: skip


async def seed_tape(database: Database, full_candles: bool = False) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await database.market.upsert(
        [
            MarketRecord(
                "replay",
                "BTC",
                "candle",
                "5s",
                now - timedelta(seconds=5 * i),
                candle_values(i, full_candles),
            )
            for i in range(120)
        ]
    )


def cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


async def cycles(
    url: str,
    client: ModelClient,
    model_ids: Sequence[str],
    count: int,
    warmup: int,
    servers: Sequence[psutil.Process],
    full_candles: bool = False,
) -> dict[str, Any]:
    """Per-cycle totals, their two parts (model calls, write) and the CPU they cost."""
    await upgrade_database(url)
    database = Database(url)
    try:
        await seed_tape(database, full_candles)
        competition = load_competition(load_settings(pack="baseline"), {})
        config = competition.pack.active_configs[0].model_dump()
        tape = Tape(database.market, provider="replay", granularity="5s")
        service = PredictService(database, competition, client, tape, call_timeout=2.0)
        totals, models, writes = [], [], []
        engine = psutil.Process()
        for index in range(warmup + count):
            if index == warmup:
                server_cpu, engine_cpu = cpu_seconds(servers), cpu_seconds([engine])
            report = await service.run_cycle(
                config, datetime.now(UTC) + timedelta(microseconds=index)
            )
            assert report.counts.get("SUCCESS") == len(model_ids), report.counts
            if index >= warmup:
                totals.append(report.seconds_total * 1000)
                models.append(report.seconds_models * 1000)
                writes.append(report.seconds_write * 1000)
        server_cpu = cpu_seconds(servers) - server_cpu
        engine_cpu = cpu_seconds([engine]) - engine_cpu
        return {
            "cycles": len(totals),
            "p50_ms": percentile(totals, 50),
            "p99_ms": percentile(totals, 99),
            "models_p50_ms": percentile(models, 50),
            "write_p50_ms": percentile(writes, 50),
            "server_cpu_us_per_model": server_cpu / count / len(model_ids) * 1e6,
            "engine_cpu_ms": engine_cpu / count * 1000,
        }
    finally:
        await database.close()


async def measure(
    sizes: Sequence[int], count: int, warmup: int, full_candles: bool
) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, TemporaryPostgres(durable=True) as server:
        for n in sizes:
            processes, ports = [], []
            try:
                for _ in range(n):
                    process, port = start_our_server(_fanout.CODE_DIR)
                    processes.append(process)
                    ports.append(port)
                for process, port in zip(processes, ports, strict=True):
                    wait_port(port, process)
                client = ModelClient(base_classname=BASE_CLASS, timeout=2.0)
                try:
                    for i, port in enumerate(ports):
                        client.add_endpoint(_fanout.endpoint(i, port))
                    await client.wait_ready(n, timeout=120)
                    ids = sorted(e.model_id for e in client.known_models())
                    for backend, url in (
                        ("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / f'rt{n}.db'}"),
                        ("postgresql", server.url(await server.create_database())),
                    ):
                        servers = [psutil.Process(p.pid) for p in processes]
                        measured = await cycles(
                            url, client, ids, count, warmup, servers, full_candles
                        )
                        rows.append({"backend": backend, "models": n, **measured})
                finally:
                    await client.close()
            finally:
                stop(processes)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 10, 100 and 100 cycles")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference stack")
    parser.add_argument(
        "--full-candles",
        action="store_true",
        help="OHLCV candles in the tape (default: close only), a tick input 2x larger",
    )
    args = parser.parse_args()
    sizes = [1, 10, 100] if args.quick else [1, 10, 50, 100]
    count, warmup = (100, 10) if args.quick else (200, 20)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    rows = runner(measure(sizes, count, warmup, args.full_candles))
    cores = os.cpu_count() or 1
    print_table(
        "predict cycle: input built -> all predictions committed (ms); CPU per cycle",
        ["backend", "models", "cycles", "p50", "p99", "model calls p50", "write p50",
         "server CPU/model (us)", "engine CPU (ms)", f"CPU floor on {cores} cores (ms)"],
        [[r["backend"], r["models"], r["cycles"], r["p50_ms"], r["p99_ms"], r["models_p50_ms"],
          r["write_p50_ms"], r["server_cpu_us_per_model"], r["engine_cpu_ms"],
          (r["server_cpu_us_per_model"] * r["models"] / 1000 + r["engine_cpu_ms"]) / cores]
         for r in rows],
    )  # fmt: skip
    fanout = runner(_fanout.run(sizes, 100, 20, not args.no_reference))
    print_table(
        "one predict fanned out to N models (ms)",
        ["stack", "models", "rounds", "p50", "p99"],
        [[r["stack"], r["models"], r["rounds"], r["p50_ms"], r["p99_ms"]] for r in fanout],
    )
    figures: dict[str, Any] = {
        "bench": "predict_roundtrip",
        "quick": args.quick,
        "full_candles": args.full_candles,
    }
    for r in rows:
        prefix = f"cycle_{r['backend']}_{r['models']}"
        for key in ("p50_ms", "p99_ms", "models_p50_ms", "write_p50_ms", "engine_cpu_ms"):
            figures[f"{prefix}_{key}"] = round(r[key], 3)
        figures[f"{prefix}_server_cpu_us_per_model"] = round(r["server_cpu_us_per_model"], 1)
    for r in fanout:
        figures[f"fanout_{r['stack']}_{r['models']}_p50_ms"] = round(r["p50_ms"], 3)
        figures[f"fanout_{r['stack']}_{r['models']}_p99_ms"] = round(r["p99_ms"], 3)
    top = max(sizes)
    ours = figures.get(f"fanout_ours-fast_{top}_p50_ms")
    reference = figures.get(f"fanout_reference_{top}_p50_ms")
    if ours and reference:
        figures[f"fanout_speedup_{top}"] = round(reference / ours, 2)
        figures["target_fanout_2x"] = reference / ours >= 2
    worst_p50 = max(figures[f"cycle_{b}_{top}_p50_ms"] for b in ("sqlite", "postgresql"))
    worst_p99 = max(figures[f"cycle_{b}_{top}_p99_ms"] for b in ("sqlite", "postgresql"))
    figures["target_cycle_p50_le_20ms"] = worst_p50 <= 20
    figures["target_cycle_p99_le_50ms"] = worst_p99 <= 50
    print_json_line(figures)


if __name__ == "__main__":
    main()
