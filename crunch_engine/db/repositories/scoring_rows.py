"""What scoring reads of a prediction and what it writes back, shared by both backends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

SCORE_STATUSES = ("PENDING", "SCORED", "UNRESOLVED")


class DuePrediction(NamedTuple):
    """What scoring needs of a prediction."""

    id: str
    model_id: str
    scope_key: str
    scope_jsonb: dict[str, Any]
    status: str
    failure_reason: str | None
    inference_output_jsonb: Any
    performed_at: datetime
    resolvable_at: datetime
    resolve_attempts: int


@dataclass(slots=True)
class ScoreUpdate:
    """The outcome of scoring (or failing to resolve) one prediction."""

    id: str
    score_status: str
    scored_at: datetime
    score_value: float | None = None
    score_success: bool | None = None
    score_failed_reason: str | None = None
    ground_truth: Any = None
    resolve_attempts: int | None = None
