"""PostgreSQL: a predict cycle's write as ONE statement.

The cycle's input, every prediction and their score-queue entries go in one round trip
(``unnest`` arrays and data-modifying CTEs) instead of three statements: this write is
on the predict worker's critical path, between the last model answer and the commit.
Only predictions actually inserted are queued (``RETURNING``), so a retried cycle never
queues a prediction twice. Foreign keys are checked at the end of the statement, when
the input row of the first CTE is there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_WRITE_CYCLE = text(
    """
    WITH source AS (
        INSERT INTO prediction_inputs (id, prediction_config_id, scope_key, performed_at,
            raw_input_jsonb, inference_input_jsonb, meta_jsonb)
        SELECT i.id, i.config, i.scope_key, i.at, i.raw::jsonb, i.inference::jsonb, i.meta::jsonb
        FROM unnest(
            CAST(:i_ids AS text[]), CAST(:i_configs AS text[]), CAST(:i_scopes AS text[]),
            CAST(:i_at AS timestamptz[]), CAST(:i_raw AS text[]), CAST(:i_inference AS text[]),
            CAST(:i_meta AS text[])
        ) AS i(id, config, scope_key, at, raw, inference, meta)
        ON CONFLICT (id) DO NOTHING
    ), written AS (
        INSERT INTO predictions (id, input_id, model_id, prediction_config_id, scope_key,
            scope_jsonb, status, failure_reason, exec_time_us, inference_output_jsonb,
            performed_at, resolvable_at)
        SELECT p.id, p.input_id, p.model_id, p.config, p.scope_key, p.scope::jsonb, p.status,
               p.reason, p.exec_us, p.output::jsonb, p.at, p.due
        FROM unnest(
            CAST(:ids AS text[]), CAST(:input_ids AS text[]), CAST(:models AS text[]),
            CAST(:configs AS text[]), CAST(:scope_keys AS text[]), CAST(:scopes AS text[]),
            CAST(:statuses AS text[]), CAST(:reasons AS text[]), CAST(:exec_us AS integer[]),
            CAST(:outputs AS text[]), CAST(:at AS timestamptz[]), CAST(:dues AS timestamptz[])
        ) AS p(id, input_id, model_id, config, scope_key, scope, status, reason, exec_us,
               output, at, due)
        ON CONFLICT (id) DO NOTHING
        RETURNING id, resolvable_at
    )
    INSERT INTO score_queue (prediction_id, resolvable_at, resolve_attempts)
    SELECT id, resolvable_at, 0 FROM written
    """
)


def _json(value: Any) -> str:
    """As the JSON column type stores it (``None`` is JSON null, not SQL NULL)."""
    return json.dumps(value)


async def write_cycle(
    session: AsyncSession,
    inputs: Sequence[Mapping[str, Any]],
    predictions: Sequence[Mapping[str, Any]],
) -> None:
    """Rows as ``PredictionRepository.record_cycle`` builds them (column -> value)."""
    await session.execute(
        _WRITE_CYCLE,
        {
            "i_ids": [i["id"] for i in inputs],
            "i_configs": [i["prediction_config_id"] for i in inputs],
            "i_scopes": [i["scope_key"] for i in inputs],
            "i_at": [i["performed_at"] for i in inputs],
            "i_raw": [_json(i["raw_input_jsonb"]) for i in inputs],
            "i_inference": [_json(i["inference_input_jsonb"]) for i in inputs],
            "i_meta": [_json(i["meta_jsonb"]) for i in inputs],
            "ids": [p["id"] for p in predictions],
            "input_ids": [p["input_id"] for p in predictions],
            "models": [p["model_id"] for p in predictions],
            "configs": [p["prediction_config_id"] for p in predictions],
            "scope_keys": [p["scope_key"] for p in predictions],
            "scopes": [_json(p["scope_jsonb"]) for p in predictions],
            "statuses": [p["status"] for p in predictions],
            "reasons": [p["failure_reason"] for p in predictions],
            "exec_us": [p["exec_time_us"] for p in predictions],
            "outputs": [_json(p["inference_output_jsonb"]) for p in predictions],
            "at": [p["performed_at"] for p in predictions],
            "dues": [p["resolvable_at"] for p in predictions],
        },
    )
