"""A prediction as readers see it: the immutable row joined with its score outcome, or
with its place in the score queue while it waits (API pages, tests, tools)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, select

from crunch_engine.db.tables import PredictionRow, PredictionScoreRow, ScoreQueueRow

_P, _S, _Q = PredictionRow, PredictionScoreRow, ScoreQueueRow


@dataclass(slots=True)
class PredictionView:
    id: str
    input_id: str | None
    model_id: str
    prediction_config_id: str
    scope_key: str
    scope_jsonb: dict[str, Any]
    status: str
    failure_reason: str | None
    exec_time_us: int | None
    inference_output_jsonb: Any
    performed_at: datetime
    resolvable_at: datetime
    score_status: str
    """PENDING while queued; SCORED (score or penalty) or UNRESOLVED once it has an outcome."""
    score_value: float | None
    score_success: bool | None
    score_failed_reason: str | None
    """The scoring or penalty reason; while PENDING, why ground truth was not there yet."""
    scored_at: datetime | None
    resolve_attempts: int
    ground_truth_jsonb: Any


def select_views() -> Select[Any]:
    """Every prediction with its outcome; add WHERE / ORDER BY on ``PredictionRow``."""
    return (
        select(
            _P.id,
            _P.input_id,
            _P.model_id,
            _P.prediction_config_id,
            _P.scope_key,
            _P.scope_jsonb,
            _P.status,
            _P.failure_reason,
            _P.exec_time_us,
            _P.inference_output_jsonb,
            _P.performed_at,
            _P.resolvable_at,
            func.coalesce(_S.score_status, literal("PENDING")),
            _S.score_value,
            _S.score_success,
            func.coalesce(_S.score_failed_reason, _Q.last_reason),
            _S.scored_at,
            func.coalesce(_S.resolve_attempts, _Q.resolve_attempts, literal(0)),
            _S.ground_truth_jsonb,
        )
        .outerjoin(_S, _S.prediction_id == _P.id)
        .outerjoin(_Q, _Q.prediction_id == _P.id)
    )


def to_views(rows: Any) -> list[PredictionView]:
    return [PredictionView(*row) for row in rows]
