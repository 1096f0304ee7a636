"""PostgreSQL fast paths of the score worker: one statement per step of a batch.

A batch of thousands of predictions is read from the queue, dequeued, its outcomes
COPYed into ``prediction_scores`` and added to the window buckets, each step one
statement (array-bound with ``unnest`` where it is not a COPY) instead of a statement
per row: the server does the per-row work and the client encodes a few arrays. Every
statement runs through the caller's SQLAlchemy session, so the score updates and
their bucket increments stay in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crunch_engine.db.repositories.pg_copy import driver_connection
from crunch_engine.db.repositories.scoring_rows import DuePrediction, ScoreUpdate
from crunch_engine.timeutil import ensure_utc

_DUE = """
    SELECT q.prediction_id, p.model_id, p.scope_key, p.scope_jsonb::text, p.status,
           p.failure_reason, p.inference_output_jsonb::text, p.performed_at,
           q.resolvable_at, q.resolve_attempts
    FROM score_queue AS q JOIN predictions AS p ON p.id = q.prediction_id
    WHERE q.resolvable_at <= $1
    ORDER BY q.resolvable_at, q.prediction_id
    LIMIT $2
"""

OUTCOME_COLUMNS = (
    "prediction_id",
    "score_status",
    "scored_at",
    "score_value",
    "score_success",
    "score_failed_reason",
    "resolve_attempts",
    "ground_truth_jsonb",
)

_DEQUEUE = text("DELETE FROM score_queue WHERE prediction_id = ANY(CAST(:ids AS text[]))")

_ADD_TO_BUCKETS = text(
    """
    INSERT INTO model_score_buckets AS b (model_id, scope_key, bucket_start, total, count)
    SELECT * FROM unnest(
        CAST(:models AS text[]), CAST(:scopes AS text[]), CAST(:starts AS timestamptz[]),
        CAST(:totals AS float8[]), CAST(:counts AS integer[])
    )
    ON CONFLICT (model_id, scope_key, bucket_start) DO UPDATE SET
        total = b.total + EXCLUDED.total, count = b.count + EXCLUDED.count
    """
)

_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


async def due_predictions(session: AsyncSession, now: datetime, limit: int) -> list[DuePrediction]:
    """Queued predictions resolvable by ``now``, oldest first. A plain read on the driver
    (no transaction needed) with payloads fetched as text and decoded once each: the
    typed-column path costs more than the query for thousands of rows."""
    driver = await driver_connection(session)
    rows = await driver.fetch(_DUE, ensure_utc(now), limit)
    loads = json.loads
    scopes = _ScopeDecoder()
    return [
        DuePrediction(
            row[0],
            row[1],
            row[2],
            scopes.decode(row[3]),
            row[4],
            row[5],
            loads(row[6]) if row[6] is not None else None,
            row[7],
            row[8],
            row[9],
        )
        for row in rows
    ]


class _ScopeDecoder:
    """A batch's scopes repeat (every model of a cycle has the same): decoded once per
    distinct text, then each prediction gets its own shallow copy, which is a full copy
    when the values are scalars; nested scopes are decoded row by row."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, Any] | None] = {}

    def decode(self, text_: str | None) -> Any:
        if text_ is None:
            return {}
        flat = self._seen.get(text_, _MISSING)
        if flat is _MISSING:
            value = json.loads(text_)
            scalar = isinstance(value, dict) and all(
                v is None or isinstance(v, str | int | float) for v in value.values()
            )
            self._seen[text_] = value if scalar else None
            return dict(value) if scalar else value
        return dict(flat) if flat is not None else json.loads(text_)


_MISSING: Any = object()


async def finish(session: AsyncSession, outcomes: Sequence[ScoreUpdate]) -> None:
    """Dequeue the batch's final outcomes and COPY them into ``prediction_scores``.

    The DELETE goes through the session first: it opens the transaction on the
    connection, so the driver-level COPY after it commits (or rolls back) with it.
    """
    if not outcomes:
        return
    await session.execute(_DEQUEUE, {"ids": [u.id for u in outcomes]})
    encoded: dict[int, str] = {}  # a cycle's models share one ground-truth object

    def truth(value: Any) -> str | None:
        if value is None:
            return None
        text_ = encoded.get(id(value))
        if text_ is None:
            text_ = encoded[id(value)] = _encode(value)
        return text_

    records = [
        (
            u.id,
            u.score_status,
            ensure_utc(u.scored_at),
            u.score_value,
            u.score_success,
            u.score_failed_reason,
            u.resolve_attempts or 0,
            truth(u.ground_truth),
        )
        for u in outcomes
    ]
    driver = await driver_connection(session)
    try:
        await driver.copy_records_to_table(
            "prediction_scores", records=records, columns=list(OUTCOME_COLUMNS)
        )
    except asyncpg.UniqueViolationError as error:  # scored meanwhile by another worker
        raise IntegrityError("COPY prediction_scores", None, error) from error


async def add_to_buckets(
    session: AsyncSession, rows: Sequence[tuple[str, str, datetime, float, int]]
) -> None:
    """Add (model_id, scope_key, bucket_start, total, count) to the window buckets in one
    statement; the keys must be distinct (one row per bucket)."""
    columns: list[list[Any]] = [[], [], [], [], []]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    models, scopes, starts, totals, counts = columns
    await session.execute(
        _ADD_TO_BUCKETS,
        {
            "models": models,
            "scopes": scopes,
            "starts": [ensure_utc(start) for start in starts],
            "totals": totals,
            "counts": counts,
        },
    )
