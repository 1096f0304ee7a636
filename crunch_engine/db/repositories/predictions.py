"""Predictions and their cycle inputs: written once per cycle, scored later in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
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

    async def due_for_scoring(self, now: datetime, limit: int) -> list[PredictionRow]:
        """Pending predictions whose ``resolvable_at <= now``, OLDEST first."""
        statement = (
            select(PredictionRow)
            .where(
                PredictionRow.score_status == "PENDING",
                PredictionRow.resolvable_at <= ensure_utc(now),
            )
            .order_by(PredictionRow.resolvable_at.asc(), PredictionRow.id.asc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.scalars(statement)).all())

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
    groups: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for u in updates:
        if u.score_status not in SCORE_STATUSES:
            raise ValueError(f"score_status {u.score_status!r} is not one of {SCORE_STATUSES}")
        row: dict[str, Any] = {
            "id": u.id,
            "score_status": u.score_status,
            "scored_at": ensure_utc(u.scored_at),
            "score_value": u.score_value,
            "score_success": u.score_success,
            "score_failed_reason": u.score_failed_reason,
            "ground_truth_jsonb": u.ground_truth,
        }
        if u.resolve_attempts is not None:
            row["resolve_attempts"] = u.resolve_attempts
        groups[u.resolve_attempts is not None].append(row)
    for rows in groups.values():  # executemany needs the same keys in every row
        if rows:
            await session.execute(update(PredictionRow), rows)
