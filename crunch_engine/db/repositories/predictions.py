"""Predictions and their cycle inputs: written once per cycle, scored later in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crunch_engine.db.repositories import outcomes, pg_cycle, sqlite_cycle
from crunch_engine.db.repositories.prediction_views import PredictionView, select_views, to_views
from crunch_engine.db.repositories.scoring_rows import DuePrediction, ScoreUpdate
from crunch_engine.db.tables import (
    PredictionRow,
    PredictionScoreRow,
    ScoreQueueRow,
)

PREDICTION_STATUSES = ("SUCCESS", "FAILED", "TIMEOUT", "ABSENT", "INVALID")


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
        async with self._sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                await pg_cycle.write_cycle(session, inputs, predictions)  # autocommits
                return
            async with session.begin():
                await sqlite_cycle.write_cycle(session, inputs, predictions)

    async def due_for_scoring(self, now: datetime, limit: int) -> list[DuePrediction]:
        """Queued predictions whose ``resolvable_at <= now``, OLDEST first (plain rows:
        the score worker reads thousands per batch)."""
        async with self._sessions() as session:
            return await outcomes.due(session, now, limit)

    async def store_scores(self, updates: Sequence[ScoreUpdate]) -> None:
        """Write a batch of score outcomes in one transaction."""
        async with self._sessions.begin() as session:
            await outcomes.write(session, updates)

    async def latest(
        self, *, model_id: str | None = None, scope_key: str | None = None, limit: int = 50
    ) -> list[PredictionView]:
        """The ``limit`` most recent predictions with their outcomes, NEWEST first."""
        statement = select_views()
        if model_id is not None:
            statement = statement.where(PredictionRow.model_id == model_id)
        if scope_key is not None:
            statement = statement.where(PredictionRow.scope_key == scope_key)
        statement = statement.order_by(
            PredictionRow.performed_at.desc(), PredictionRow.id.desc()
        ).limit(limit)
        async with self._sessions() as session:
            return to_views(await session.execute(statement))

    async def count(self, *, score_status: str | None = None) -> int:
        """All predictions, or those PENDING (queued), SCORED or UNRESOLVED."""
        if score_status is None:
            statement = select(func.count()).select_from(PredictionRow)
        elif score_status == "PENDING":
            statement = select(func.count()).select_from(ScoreQueueRow)
        else:
            statement = (
                select(func.count())
                .select_from(PredictionScoreRow)
                .where(PredictionScoreRow.score_status == score_status)
            )
        async with self._sessions() as session:
            return int(await session.scalar(statement) or 0)
