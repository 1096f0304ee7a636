"""PostgreSQL bulk upsert through COPY: the fast path for market records.

New points (backfill, live ingestion: the common case) are COPYed straight into
``market_records`` inside a savepoint, after a primary-key probe finds none of the
batch's keys. Otherwise, or when the COPY hits a row written meanwhile, rows go through
a per-connection temporary staging table and one ``INSERT ... SELECT ... ON CONFLICT DO
UPDATE``. Everything runs in the session's transaction, so the watermark update that
follows commits together with the rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from crunch_engine.db.types import UTCDateTime
from crunch_engine.feeds.contracts import MarketRecord

COPY_COLUMNS = (
    "provider",
    "asset",
    "kind",
    "granularity",
    "ts_event",
    "ts_ingested",
    "values_jsonb",
    "meta_jsonb",
)
_STAGE = "market_records_stage"
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
    "(LIKE market_records INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_PROBE = text(
    "SELECT 1 FROM market_records WHERE provider = :provider AND asset = :asset "
    "AND kind = :kind AND granularity = :granularity "
    "AND ts_event BETWEEN :first AND :last LIMIT 1"
).bindparams(
    bindparam("first", type_=UTCDateTime()),
    bindparam("last", type_=UTCDateTime()),
)
_MOVE = (
    f"INSERT INTO market_records ({', '.join(COPY_COLUMNS)}) "
    f"SELECT {', '.join(COPY_COLUMNS)} FROM {_STAGE} "
    "ON CONFLICT (provider, asset, kind, granularity, ts_event) DO UPDATE SET "
    "values_jsonb = EXCLUDED.values_jsonb, meta_jsonb = EXCLUDED.meta_jsonb, "
    "ts_ingested = EXCLUDED.ts_ingested"
)


encode_json = json.JSONEncoder(separators=(",", ":")).encode
"""How payloads are serialised for COPY (the ingest benchmark's ceiling uses it too)."""


def copy_tuples(batch: Sequence[MarketRecord], now: datetime) -> list[tuple[Any, ...]]:
    """Rows in ``COPY_COLUMNS`` order, payloads as JSON text, for ``copy_records_to_table``."""
    return [
        (
            r.provider,
            r.asset,
            r.kind,
            r.granularity,
            r.ts_event,
            now,
            encode_json(r.values),
            encode_json(r.meta),
        )
        for r in batch
    ]


async def copy_upsert_market_records(
    session: AsyncSession, batch: Sequence[MarketRecord], now: datetime
) -> None:
    """Upsert ``batch`` (unique by series key and ts_event) in the session's transaction."""
    records = copy_tuples(batch, now)
    # Running a statement through SQLAlchemy first opens the transaction on the
    # connection, so the driver-level COPYs below are part of it.
    if not await _any_stored(session, batch):
        try:
            async with session.begin_nested():
                driver = await driver_connection(session)
                await driver.copy_records_to_table(
                    "market_records", records=records, columns=list(COPY_COLUMNS)
                )
            return
        except asyncpg.UniqueViolationError:
            pass  # another writer stored some of these points meanwhile: upsert them
    await session.execute(text(_CREATE_STAGE))
    driver = await driver_connection(session)
    await driver.copy_records_to_table(_STAGE, records=records, columns=list(COPY_COLUMNS))
    await session.execute(text(_MOVE))


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session's transaction.

    SQLAlchemy begins the driver-level transaction lazily, at its first statement: run
    one through the session before using this, or the driver call autocommits alone.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver


async def _any_stored(session: AsyncSession, batch: Sequence[MarketRecord]) -> bool:
    """Whether any point of ``batch`` may already be stored: one primary-key range probe
    per series, over the batch's time span."""
    spans: dict[tuple[str, str, str, str], list[datetime]] = {}
    for r in batch:
        span = spans.get((r.provider, r.asset, r.kind, r.granularity))
        if span is None:
            spans[(r.provider, r.asset, r.kind, r.granularity)] = [r.ts_event, r.ts_event]
        elif r.ts_event < span[0]:
            span[0] = r.ts_event
        elif r.ts_event > span[1]:
            span[1] = r.ts_event
    for (provider, asset, kind, granularity), (first, last) in spans.items():
        found = await session.scalar(
            _PROBE,
            {
                "provider": provider,
                "asset": asset,
                "kind": kind,
                "granularity": granularity,
                "first": first,
                "last": last,
            },
        )
        if found is not None:
            return True
    return False
