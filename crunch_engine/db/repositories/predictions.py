"""Predictions and their cycle inputs: written once per cycle, scored later in batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crunch_engine.db.repositories.batching import upsert_rows
from crunch_engine.db.tables import PredictionInputRow, PredictionRow
from crunch_engine.timeutil import ensure_utc

PREDICTION_STATUSES = ("SUCCESS", "FAILED", "TIMEOUT", "ABSENT", "INVALID")
SCORE_STATUSES = ("PENDING", "SCORED", "UNRESOLVED")


@dataclass(slots=True)
class PredictionInput:
    id: str
    prediction_config_id: str
    scope_key: str
    performed_at: datetime
    raw_input: Any = None
    inference_input: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PredictionRecord:
    id: str
    model_id: str
    prediction_config_id: str
    scope_key: str
    scope: dict[str, Any]
    status: str
    performed_at: datetime
    resolvable_at: datetime
    input_id: str | None = None
    output: Any = None
    failure_reason: str | None = None
    exec_time_us: int | None = None

    def __post_init__(self) -> None:
        if self.status not in PREDICTION_STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {PREDICTION_STATUSES}")


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


class PredictionRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record_cycle(
        self, inputs: Sequence[PredictionInput], predictions: Sequence[PredictionRecord]
    ) -> None:
        """Store a cycle's inputs and every prediction in ONE transaction.

        Idempotent: a row whose id already exists is left untouched, so a retried
        cycle never duplicates predictions.
        """
        input_rows = [
            {
                "id": i.id,
                "prediction_config_id": i.prediction_config_id,
                "scope_key": i.scope_key,
                "performed_at": ensure_utc(i.performed_at),
                "raw_input_jsonb": i.raw_input,
                "inference_input_jsonb": i.inference_input,
                "meta_jsonb": i.meta,
            }
            for i in inputs
        ]
        prediction_rows = [
            {
                "id": p.id,
                "input_id": p.input_id,
                "model_id": p.model_id,
                "prediction_config_id": p.prediction_config_id,
                "scope_key": p.scope_key,
                "scope_jsonb": p.scope,
                "status": p.status,
                "failure_reason": p.failure_reason,
                "exec_time_us": p.exec_time_us,
                "inference_output_jsonb": p.output,
                "performed_at": ensure_utc(p.performed_at),
                "resolvable_at": ensure_utc(p.resolvable_at),
                "score_status": "PENDING",
                "resolve_attempts": 0,
            }
            for p in predictions
        ]
        async with self._sessions.begin() as session:
            await upsert_rows(
                session,
                PredictionInputRow.__table__,
                input_rows,
                conflict_columns=("id",),
                update_columns=None,
            )
            await upsert_rows(
                session,
                PredictionRow.__table__,
                prediction_rows,
                conflict_columns=("id",),
                update_columns=None,
            )

    async def due_for_scoring(self, now: datetime, limit: int) -> list[DuePrediction]:
        """Pending predictions whose ``resolvable_at <= now``, OLDEST first (plain rows:
        the score worker reads thousands per batch)."""
        statement = (
            select(*(getattr(PredictionRow, name) for name in DuePrediction._fields))
            .where(
                PredictionRow.score_status == "PENDING",
                PredictionRow.resolvable_at <= ensure_utc(now),
            )
            .order_by(PredictionRow.resolvable_at.asc(), PredictionRow.id.asc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return [DuePrediction(*row) for row in (await session.execute(statement)).all()]

    async def store_scores(self, updates: Sequence[ScoreUpdate]) -> None:
        """Write a batch of score outcomes in one transaction (bulk UPDATE by id)."""
        async with self._sessions.begin() as session:
            await apply_score_updates(session, updates)

    async def latest(
        self, *, model_id: str | None = None, scope_key: str | None = None, limit: int = 50
    ) -> list[PredictionRow]:
        """The ``limit`` most recent predictions, NEWEST first."""
        statement = select(PredictionRow)
        if model_id is not None:
            statement = statement.where(PredictionRow.model_id == model_id)
        if scope_key is not None:
            statement = statement.where(PredictionRow.scope_key == scope_key)
        statement = statement.order_by(
            PredictionRow.performed_at.desc(), PredictionRow.id.desc()
        ).limit(limit)
        async with self._sessions() as session:
            return list((await session.scalars(statement)).all())

    async def count(self, *, score_status: str | None = None) -> int:
        statement = select(func.count()).select_from(PredictionRow)
        if score_status is not None:
            statement = statement.where(PredictionRow.score_status == score_status)
        async with self._sessions() as session:
            return int(await session.scalar(statement) or 0)


async def apply_score_updates(session: AsyncSession, updates: Sequence[ScoreUpdate]) -> None:
    """Bulk UPDATE of score outcomes inside the caller's transaction."""
    if not updates:
        return
    for u in updates:
        if u.score_status not in SCORE_STATUSES:
            raise ValueError(f"score_status {u.score_status!r} is not one of {SCORE_STATUSES}")
    if session.get_bind().dialect.name == "postgresql":
        await _update_scores_postgres(session, updates)
        return
    table = PredictionRow.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            score_status=bindparam("b_status"),
            scored_at=bindparam("b_scored_at"),
            score_value=bindparam("b_value"),
            score_success=bindparam("b_success"),
            score_failed_reason=bindparam("b_reason"),
            ground_truth_jsonb=bindparam("b_truth"),
            resolve_attempts=func.coalesce(bindparam("b_attempts"), table.c.resolve_attempts),
        )
    )
    await session.execute(
        statement,
        [
            {
                "b_id": u.id,
                "b_status": u.score_status,
                "b_scored_at": ensure_utc(u.scored_at),
                "b_value": u.score_value,
                "b_success": u.score_success,
                "b_reason": u.score_failed_reason,
                "b_truth": u.ground_truth,
                "b_attempts": u.resolve_attempts,
            }
            for u in updates
        ],
    )


_PG_UPDATE = text(
    """
    UPDATE predictions AS p SET
        score_status = v.score_status,
        scored_at = v.scored_at,
        score_value = v.score_value,
        score_success = v.score_success,
        score_failed_reason = v.score_failed_reason,
        ground_truth_jsonb = v.ground_truth::jsonb,
        resolve_attempts = COALESCE(v.resolve_attempts, p.resolve_attempts)
    FROM unnest(
        CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:scored_at AS timestamptz[]),
        CAST(:values AS float8[]), CAST(:successes AS boolean[]), CAST(:reasons AS text[]),
        CAST(:truths AS text[]), CAST(:attempts AS integer[])
    ) AS v(id, score_status, scored_at, score_value, score_success, score_failed_reason,
           ground_truth, resolve_attempts)
    WHERE p.id = v.id
    """
)


async def _update_scores_postgres(session: AsyncSession, updates: Sequence[ScoreUpdate]) -> None:
    """One UPDATE ... FROM unnest(arrays) for the whole batch (PostgreSQL)."""
    encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
    await session.execute(
        _PG_UPDATE,
        {
            "ids": [u.id for u in updates],
            "statuses": [u.score_status for u in updates],
            "scored_at": [ensure_utc(u.scored_at) for u in updates],
            "values": [u.score_value for u in updates],
            "successes": [u.score_success for u in updates],
            "reasons": [u.score_failed_reason for u in updates],
            "truths": [
                encode(u.ground_truth) if u.ground_truth is not None else None for u in updates
            ],
            "attempts": [u.resolve_attempts for u in updates],
        },
    )
