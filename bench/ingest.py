"""Market-data ingestion throughput.

1. Upsert throughput of ``market_records`` (our repository path) on SQLite and on
   PostgreSQL, first inserts then updates of the same rows, beside the ceiling: raw
   asyncpg ``copy_records_to_table`` of the same rows into an unindexed scratch table,
   in the same run, same server, same batches.
2. End to end: 30 days of 1-minute candles (43,200 rows) backfilled from a local fake
   Binance server (its own process) through the real python-binance client, the
   ingestion service and the repository, on both backends.

Targets: PostgreSQL upsert >= 50 % of the COPY ceiling; the 30-day backfill < 5 s.
Usage: python bench/ingest.py [--quick]   (last line: one JSON object)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import print_json_line, print_table

from crunch_engine.db.database import Database
from crunch_engine.db.migrate import upgrade_database
from crunch_engine.db.repositories.pg_copy import COPY_COLUMNS, copy_tuples
from crunch_engine.feeds.contracts import MarketRecord
from crunch_engine.testing.postgres import TemporaryPostgres

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_records(count: int, provider: str = "bench") -> list[MarketRecord]:
    price = 100_000.0
    records = []
    for i in range(count):
        price *= 1.0 + ((i * 7919) % 201 - 100) / 1_000_000
        records.append(
            MarketRecord(
                provider, "BTC", "candle", "1m", T0 + timedelta(minutes=i),
                {"open": price, "high": price * 1.001, "low": price * 0.999,
                 "close": price, "volume": 1.0 + i % 13},
            )
        )  # fmt: skip
    return records


async def upsert_rate(url: str, records: list[MarketRecord], batch: int) -> tuple[float, float]:
    """(insert rows/s, update rows/s) through ``MarketRepository.upsert``."""
    database = Database(url)
    rates = []
    try:
        for _ in range(2):  # the second pass updates every row
            started = time.perf_counter()
            for i in range(0, len(records), batch):
                await database.market.upsert(records[i : i + batch])
            rates.append(len(records) / (time.perf_counter() - started))
    finally:
        await database.close()
    return rates[0], rates[1]


async def copy_ceiling(
    server: TemporaryPostgres, db: str, records: list[MarketRecord], batch: int
) -> float:
    import asyncpg

    connection = await asyncpg.connect(server.url(db, driver="postgresql"))
    try:
        await connection.execute("CREATE TABLE scratch (LIKE market_records INCLUDING DEFAULTS)")
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            # The same tuples and JSON encoding as the repository's path: only the
            # database work differs.
            rows = copy_tuples(records[i : i + batch], datetime.now(UTC))
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "scratch", records=rows, columns=list(COPY_COLUMNS)
                )
        return len(records) / (time.perf_counter() - started)
    finally:
        await connection.close()


def start_fake_binance(minutes: int) -> tuple[subprocess.Popen, str, int]:
    """The fake Binance in its own process; returns (process, base URL, now_ms)."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-fake-binance", str(minutes)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    return process, ready["base_url"], ready["now_ms"]


def serve_fake_binance(minutes: int) -> None:
    from tests.feeds.fakes.binance import FakeBinance, real_klines

    async def main() -> None:
        now_ms = (int(time.time() * 1000) // 60_000) * 60_000 + 30_000
        first = now_ms - 30_000 - minutes * 60_000
        server = FakeBinance(
            now_ms=lambda: now_ms, klines={"BTCUSDT": real_klines("BTC", first, minutes + 1)}
        )
        await server.start()
        print(json.dumps({"base_url": server.base_url, "now_ms": now_ms}), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def backfill_seconds(url: str, base_url: str, now_ms: int, minutes: int) -> tuple[float, int]:
    from crunch_engine.feeds.base import ManualClock
    from crunch_engine.feeds.providers.binance import BinanceFeed
    from crunch_engine.feeds.settings import load_feed_settings
    from crunch_engine.services.ingestion import MarketIngestion

    clock = ManualClock(datetime.fromtimestamp(now_ms / 1000, UTC))
    settings = load_feed_settings(
        {}, provider="binance", binance_base_url=base_url, binance_use_websocket=False
    )
    feed = BinanceFeed.from_settings(settings, clock=clock)
    database = Database(url)
    try:
        ingestion = MarketIngestion(database.market, feed, clock=clock)
        started = time.perf_counter()
        result = await ingestion.backfill("BTC", clock.now() - timedelta(minutes=minutes))
        elapsed = time.perf_counter() - started
    finally:
        await feed.aclose()
        await database.close()
    return elapsed, result.stored


async def run(quick: bool) -> dict[str, object]:
    count = 40_000 if quick else 200_000
    batch = 5_000
    days = 30
    minutes = days * 24 * 60
    records = make_records(count)
    figures: dict[str, object] = {"rows": count, "batch": batch, "quick": quick}
    with tempfile.TemporaryDirectory() as tmp, TemporaryPostgres(durable=True) as server:
        sqlite_url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade_database(sqlite_url)
        pg_db = await server.create_database()
        pg_url = server.url(pg_db)
        await upgrade_database(pg_url)

        (
            figures["sqlite_insert_rows_per_s"],
            figures["sqlite_update_rows_per_s"],
        ) = await upsert_rate(sqlite_url, records, batch)
        figures["pg_insert_rows_per_s"], figures["pg_update_rows_per_s"] = await upsert_rate(
            pg_url, records, batch
        )
        figures["pg_copy_ceiling_rows_per_s"] = await copy_ceiling(server, pg_db, records, batch)
        figures["pg_insert_vs_ceiling"] = (
            figures["pg_insert_rows_per_s"] / figures["pg_copy_ceiling_rows_per_s"]
        )  # type: ignore[operator]
        figures["pg_update_vs_ceiling"] = (
            figures["pg_update_rows_per_s"] / figures["pg_copy_ceiling_rows_per_s"]
        )  # type: ignore[operator]

        fake, base_url, now_ms = start_fake_binance(minutes)
        try:
            for name, url in (
                ("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'e2e.db'}"),
                ("pg", None),
            ):
                if url is None:
                    url = server.url(await server.create_database())
                await upgrade_database(url)
                seconds, stored = await backfill_seconds(url, base_url, now_ms, minutes)
                figures[f"{name}_backfill_30d_seconds"] = seconds
                figures[f"{name}_backfill_30d_rows"] = stored
        finally:
            fake.terminate()
            fake.wait(timeout=10)
    figures["target_pg_upsert_ge_50pct_ceiling"] = figures["pg_insert_vs_ceiling"] >= 0.5  # type: ignore[operator]
    figures["target_backfill_30d_lt_5s"] = figures["pg_backfill_30d_seconds"] < 5.0  # type: ignore[operator]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run (under a minute)")
    parser.add_argument("--serve-fake-binance", type=int, metavar="MINUTES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake_binance:
        serve_fake_binance(args.serve_fake_binance)
        return
    figures = asyncio.run(run(args.quick))
    print_table(
        f"market_records upsert ({figures['rows']:,} rows, batches of {figures['batch']:,})",
        ["path", "insert rows/s", "update rows/s"],
        [
            [
                "SQLite (repository)",
                figures["sqlite_insert_rows_per_s"],
                figures["sqlite_update_rows_per_s"],
            ],
            [
                "PostgreSQL (repository)",
                figures["pg_insert_rows_per_s"],
                figures["pg_update_rows_per_s"],
            ],
            ["PostgreSQL raw COPY (ceiling)", figures["pg_copy_ceiling_rows_per_s"], "-"],
            [
                "PostgreSQL repository / ceiling",
                f"{figures['pg_insert_vs_ceiling']:.0%}",
                f"{figures['pg_update_vs_ceiling']:.0%}",
            ],
        ],
    )
    print_table(
        "30 days of 1-minute candles from the fake Binance (separate process)",
        ["backend", "rows", "seconds"],
        [
            ["SQLite", figures["sqlite_backfill_30d_rows"], figures["sqlite_backfill_30d_seconds"]],
            ["PostgreSQL", figures["pg_backfill_30d_rows"], figures["pg_backfill_30d_seconds"]],
        ],
    )
    print_json_line(figures)


if __name__ == "__main__":
    main()
