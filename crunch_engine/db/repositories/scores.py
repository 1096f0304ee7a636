"""Scores: committing a scored batch with its window increments, reading window stats,
and storing per-model score snapshots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crunch_engine.db.repositories import outcomes, pg_scores
from crunch_engine.db.repositories.batching import insert_for
from crunch_engine.db.repositories.scoring_rows import ScoreUpdate
from crunch_engine.db.tables import LeaderboardRow, ModelScoreRow, ScoreBucketRow
from crunch_engine.slots.spec import WindowStats
from crunch_engine.timeutil import ensure_utc

BUCKET = timedelta(hours=1)
_BUCKETS = ScoreBucketRow.__table__

BucketKey = tuple[str, str, datetime]
"""(model_id, scope_key, bucket_start)"""


def bucket_start(ts: datetime) -> datetime:
    """The hour bucket a score belongs to (by the prediction's ``performed_at``)."""
    ts = ensure_utc(ts)
    return ts.replace(minute=0, second=0, microsecond=0)


class ScoreRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def commit_scored(
        self, updates: Sequence[ScoreUpdate], increments: Mapping[BucketKey, tuple[float, int]]
    ) -> None:
        """Store score outcomes AND add their values to the window buckets, atomically:
        a worker killed at any moment never double-counts nor loses a score."""
        async with self._sessions.begin() as session:
            await outcomes.write(session, updates)
            if not increments:
                return
            rows = [(*key, total, count) for key, (total, count) in increments.items()]
            if session.get_bind().dialect.name == "postgresql":
                await pg_scores.add_to_buckets(session, rows)
                return
            statement = insert_for(session, _BUCKETS)
            statement = statement.on_conflict_do_update(
                index_elements=["model_id", "scope_key", "bucket_start"],
                set_={
                    "total": _BUCKETS.c.total + statement.excluded.total,
                    "count": _BUCKETS.c.count + statement.excluded.count,
                },
            )
            columns = ("model_id", "scope_key", "bucket_start", "total", "count")
            await session.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])

    async def window_stats(
        self, scope_keys: Sequence[str], since: Mapping[str, datetime]
    ) -> dict[str, dict[str, WindowStats]]:
        """Per model, the sum and count of scores in each window (buckets starting at or
        after the window's start), over the given scopes; one query for all windows."""
        oldest = min(since.values())
        columns = []
        for name, start in since.items():
            inside = ScoreBucketRow.bucket_start >= ensure_utc(start)
            columns.append(
                func.sum(case((inside, ScoreBucketRow.total), else_=0.0)).label(f"t_{name}")
            )
            columns.append(
                func.sum(case((inside, ScoreBucketRow.count), else_=0)).label(f"c_{name}")
            )
        statement = (
            select(ScoreBucketRow.model_id, *columns)
            .where(
                and_(
                    ScoreBucketRow.scope_key.in_(list(scope_keys)),
                    ScoreBucketRow.bucket_start >= ensure_utc(oldest),
                )
            )
            .group_by(ScoreBucketRow.model_id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
        return {
            row.model_id: {
                name: WindowStats(
                    float(getattr(row, f"t_{name}") or 0.0), int(getattr(row, f"c_{name}") or 0)
                )
                for name in since
            }
            for row in rows
        }

    async def insert_model_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        async with self._sessions.begin() as session:
            await session.execute(insert_for(session, ModelScoreRow.__table__), list(rows))

    async def latest_model_scores(self, leaderboard_key: str) -> list[ModelScoreRow]:
        """Each model's most recent score snapshot on a leaderboard."""
        newest = (
            select(ModelScoreRow.model_id, func.max(ModelScoreRow.computed_at).label("at"))
            .where(ModelScoreRow.leaderboard_key == leaderboard_key)
            .group_by(ModelScoreRow.model_id)
            .subquery()
        )
        statement = select(ModelScoreRow).join(
            newest,
            and_(
                ModelScoreRow.model_id == newest.c.model_id,
                ModelScoreRow.computed_at == newest.c.at,
                ModelScoreRow.leaderboard_key == leaderboard_key,
            ),
        )
        async with self._sessions() as session:
            return list((await session.scalars(statement)).all())

    async def prune_snapshots(
        self, now: datetime, *, keep_all: timedelta, keep_hourly: timedelta
    ) -> int:
        """Bounded retention of leaderboard and model-score snapshots: every snapshot of
        the last ``keep_all``, then the first of each hour up to ``keep_hourly``, nothing
        older. Returns the number of rows deleted."""
        now = ensure_utc(now)
        all_since, hourly_since = now - keep_all, now - keep_hourly
        deleted = 0
        async with self._sessions.begin() as session:
            for table, key, at in (
                (LeaderboardRow, LeaderboardRow.leaderboard_key, LeaderboardRow.created_at),
                (ModelScoreRow, ModelScoreRow.leaderboard_key, ModelScoreRow.computed_at),
            ):
                result = await session.execute(delete(table).where(at < hourly_since))
                deleted += int(result.rowcount or 0)
                candidates = (
                    await session.execute(
                        select(table.id, key, at)
                        .where(at >= hourly_since, at < all_since)
                        .order_by(key, at)
                    )
                ).all()
                kept: set[tuple[str, datetime]] = set()
                doomed = []
                for row_id, board, when in candidates:
                    hour = (board, bucket_start(when))
                    if hour in kept:
                        doomed.append(row_id)
                    else:
                        kept.add(hour)
                for start in range(0, len(doomed), 500):
                    result = await session.execute(
                        delete(table).where(table.id.in_(doomed[start : start + 500]))
                    )
                    deleted += int(result.rowcount or 0)
        return deleted
