"""Score outcomes: the queue of predictions waiting for a score, and the appended results.

A prediction is enqueued when it is written. The score worker reads the queue oldest
first and, in the transaction that adds to the window buckets, appends each final
outcome (SCORED / UNRESOLVED) to ``prediction_scores`` and removes it from the queue;
a prediction still waiting for ground truth stays queued with its attempt count and
reason. Two workers scoring the same prediction collide on the outcome's primary key,
so one of them rolls back whole: never a double count.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crunch_engine.db.repositories import pg_scores
from crunch_engine.db.repositories.scoring_rows import SCORE_STATUSES, DuePrediction, ScoreUpdate
from crunch_engine.db.tables import PredictionRow, PredictionScoreRow, ScoreQueueRow
from crunch_engine.timeutil import ensure_utc

_QUEUE = ScoreQueueRow.__table__
_SCORES = PredictionScoreRow.__table__
_PREDICTIONS = PredictionRow.__table__
_CHUNK = 500  # ids per IN (...) on SQLite, well under its bound-parameter limit


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def due(session: AsyncSession, now: datetime, limit: int) -> list[DuePrediction]:
    """Queued predictions resolvable by ``now``, oldest first."""
    if _is_postgres(session):
        return await pg_scores.due_predictions(session, now, limit)
    statement = (
        select(
            _QUEUE.c.prediction_id,
            _PREDICTIONS.c.model_id,
            _PREDICTIONS.c.scope_key,
            _PREDICTIONS.c.scope_jsonb,
            _PREDICTIONS.c.status,
            _PREDICTIONS.c.failure_reason,
            _PREDICTIONS.c.inference_output_jsonb,
            _PREDICTIONS.c.performed_at,
            _QUEUE.c.resolvable_at,
            _QUEUE.c.resolve_attempts,
        )
        .join(_PREDICTIONS, _PREDICTIONS.c.id == _QUEUE.c.prediction_id)
        .where(_QUEUE.c.resolvable_at <= ensure_utc(now))
        .order_by(_QUEUE.c.resolvable_at, _QUEUE.c.prediction_id)
        .limit(limit)
    )
    return [DuePrediction(*row) for row in await session.execute(statement)]


async def write(session: AsyncSession, updates: Sequence[ScoreUpdate]) -> None:
    """Store a batch of outcomes inside the caller's transaction: final ones appended
    and dequeued, PENDING ones kept queued with their attempt count and reason."""
    for u in updates:
        if u.score_status not in SCORE_STATUSES:
            raise ValueError(f"score_status {u.score_status!r} is not one of {SCORE_STATUSES}")
    final = [u for u in updates if u.score_status != "PENDING"]
    waiting = [u for u in updates if u.score_status == "PENDING"]
    if _is_postgres(session):
        await pg_scores.finish(session, final)
    elif final:
        await session.execute(
            insert(_SCORES),
            [
                {
                    "prediction_id": u.id,
                    "score_status": u.score_status,
                    "scored_at": ensure_utc(u.scored_at),
                    "score_value": u.score_value,
                    "score_success": u.score_success,
                    "score_failed_reason": u.score_failed_reason,
                    "resolve_attempts": u.resolve_attempts or 0,
                    "ground_truth_jsonb": u.ground_truth,
                }
                for u in final
            ],
        )
        for start in range(0, len(final), _CHUNK):
            chunk = [u.id for u in final[start : start + _CHUNK]]
            await session.execute(delete(_QUEUE).where(_QUEUE.c.prediction_id.in_(chunk)))
    if waiting:
        statement = (
            update(_QUEUE)
            .where(_QUEUE.c.prediction_id == bindparam("b_id"))
            .values(resolve_attempts=bindparam("b_attempts"), last_reason=bindparam("b_reason"))
        )
        await session.execute(
            statement,
            [
                {
                    "b_id": u.id,
                    "b_attempts": u.resolve_attempts or 0,
                    "b_reason": u.score_failed_reason,
                }
                for u in waiting
            ],
        )
