"""PostgreSQL: a predict cycle's write as ONE statement.

The cycle's input, every prediction and their score-queue entries go in one round trip
(``unnest`` arrays and data-modifying CTEs) instead of three statements, autocommitted
on the driver connection: this write is on the predict worker's critical path, between
the last model answer and the commit.
Only predictions actually inserted are queued (``RETURNING``), so a retried cycle never
queues a prediction twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from crunch_engine.db.repositories.cycle_values import SharedValues

if TYPE_CHECKING:
    from crunch_engine.db.repositories.predictions import PredictionInput, PredictionRecord

_WRITE_CYCLE = """
    WITH source AS (
        INSERT INTO prediction_inputs (id, prediction_config_id, scope_key, performed_at,
            raw_input_jsonb, inference_input_jsonb, meta_jsonb)
        SELECT i.id, i.config, i.scope_key, i.at, i.raw::jsonb, i.inference::jsonb, i.meta::jsonb
        FROM unnest(
            CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS text[]),
            CAST($4 AS timestamptz[]), CAST($5 AS text[]), CAST($6 AS text[]),
            CAST($7 AS text[])
        ) AS i(id, config, scope_key, at, raw, inference, meta)
        ON CONFLICT (id) DO NOTHING
    ), written AS (
        INSERT INTO predictions (id, input_id, model_id, prediction_config_id, scope_key,
            scope_jsonb, status, failure_reason, exec_time_us, inference_output_jsonb,
            performed_at, resolvable_at)
        SELECT p.id, p.input_id, p.model_id, p.config, p.scope_key, p.scope::jsonb, p.status,
               p.reason, p.exec_us, p.output::jsonb, p.at, p.due
        FROM unnest(
            CAST($8 AS text[]), CAST($9 AS text[]), CAST($10 AS text[]),
            CAST($11 AS text[]), CAST($12 AS text[]), CAST($13 AS text[]),
            CAST($14 AS text[]), CAST($15 AS text[]), CAST($16 AS integer[]),
            CAST($17 AS text[]), CAST($18 AS timestamptz[]), CAST($19 AS timestamptz[])
        ) AS p(id, input_id, model_id, config, scope_key, scope, status, reason, exec_us,
               output, at, due)
        ON CONFLICT (id) DO NOTHING
        RETURNING id, resolvable_at
    )
    INSERT INTO score_queue (prediction_id, resolvable_at, resolve_attempts)
    SELECT id, resolvable_at, 0 FROM written
"""


def _json(value: Any) -> str:
    """As the JSON column type stores it (``None`` is JSON null, not SQL NULL)."""
    return json.dumps(value)


async def write_cycle(
    session: AsyncSession,
    inputs: Sequence[PredictionInput],
    predictions: Sequence[PredictionRecord],
) -> None:
    """Sent on the session's asyncpg connection as one autocommitted statement, which is
    atomic on its own: no BEGIN / COMMIT round trips, no SQLAlchemy statement layer.
    The session must not have started a transaction (its work would be left out).
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None or driver.is_in_transaction():
        raise RuntimeError("the cycle write needs a connection outside any transaction")
    shared = SharedValues()
    await driver.execute(
        _WRITE_CYCLE,
        [i.id for i in inputs],
        [i.prediction_config_id for i in inputs],
        [i.scope_key for i in inputs],
        [shared.utc(i.performed_at) for i in inputs],
        [_json(i.raw_input) for i in inputs],
        [_json(i.inference_input) for i in inputs],
        [_json(i.meta) for i in inputs],
        [p.id for p in predictions],
        [p.input_id for p in predictions],
        [p.model_id for p in predictions],
        [p.prediction_config_id for p in predictions],
        [p.scope_key for p in predictions],
        [shared.json(p.scope) for p in predictions],
        [p.status for p in predictions],
        [p.failure_reason for p in predictions],
        [p.exec_time_us for p in predictions],
        [_json(p.output) for p in predictions],
        [shared.utc(p.performed_at) for p in predictions],
        [shared.utc(p.resolvable_at) for p in predictions],
    )
