"""SQLite: a predict cycle's write straight through the driver connection.

The cycle's input, its predictions and their score-queue entries are three statements
(one ``executemany`` each) sent on the session's own aiosqlite connection, inside the
session's transaction (the sqlite3 module opens it before the first insert; the session
commits it). Going through SQLAlchemy's statement layer instead cost 4 ms of a 6 ms
100-model write: compilation, a bind processor call per value, and a cursor opened and
closed through the driver's thread per statement. Values are encoded as the column
types' bind processors encode them (``cycle_values``; a test compares the stored text
with the ORM's), so what is stored is what the ORM path stores and reads back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from crunch_engine.db.repositories.cycle_values import SharedValues

if TYPE_CHECKING:
    from crunch_engine.db.repositories.predictions import PredictionInput, PredictionRecord

_INPUT_COLUMNS = (
    "id",
    "prediction_config_id",
    "scope_key",
    "performed_at",
    "raw_input_jsonb",
    "inference_input_jsonb",
    "meta_jsonb",
)
_PREDICTION_COLUMNS = (
    "id",
    "input_id",
    "model_id",
    "prediction_config_id",
    "scope_key",
    "scope_jsonb",
    "status",
    "failure_reason",
    "exec_time_us",
    "inference_output_jsonb",
    "performed_at",
    "resolvable_at",
)
# Queue only what is neither queued nor already scored: a retried cycle must not score
# its predictions twice.
_ENQUEUE = (
    "INSERT INTO score_queue (prediction_id, resolvable_at, resolve_attempts) "
    "SELECT ?, ?, 0 WHERE NOT EXISTS "
    "(SELECT 1 FROM prediction_scores WHERE prediction_id = ?) "
    "ON CONFLICT (prediction_id) DO NOTHING"
)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"


_INSERT_INPUT = _insert_sql("prediction_inputs", _INPUT_COLUMNS)
_INSERT_PREDICTION = _insert_sql("predictions", _PREDICTION_COLUMNS)


def _input_row(shared: SharedValues, row: PredictionInput) -> tuple[Any, ...]:
    return (
        row.id,
        row.prediction_config_id,
        row.scope_key,
        shared.sqlite_time(row.performed_at),
        json.dumps(row.raw_input),
        json.dumps(row.inference_input),
        json.dumps(row.meta),
    )


def _prediction_row(shared: SharedValues, row: PredictionRecord) -> tuple[Any, ...]:
    return (
        row.id,
        row.input_id,
        row.model_id,
        row.prediction_config_id,
        row.scope_key,
        shared.json(row.scope),
        row.status,
        row.failure_reason,
        row.exec_time_us,
        json.dumps(row.output),
        shared.sqlite_time(row.performed_at),
        shared.sqlite_time(row.resolvable_at),
    )


async def write_cycle(
    session: AsyncSession,
    inputs: Sequence[PredictionInput],
    predictions: Sequence[PredictionRecord],
) -> None:
    """In the session's transaction (the caller commits)."""
    connection = await session.connection()
    shared = SharedValues()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None:
        raise RuntimeError("the session's connection has no driver connection")
    if inputs:
        await driver.executemany(_INSERT_INPUT, [_input_row(shared, row) for row in inputs])
    if predictions:
        encoded = [_prediction_row(shared, row) for row in predictions]
        await driver.executemany(_INSERT_PREDICTION, encoded)
        await driver.executemany(_ENQUEUE, [(row[0], row[11], row[0]) for row in encoded])
