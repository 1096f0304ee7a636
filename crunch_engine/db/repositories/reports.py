"""Read-only queries behind the report API: paged predictions and score time series.

Kept apart from the write-side repositories: the API only reads, and every query here
is bounded (a limit, a time range) so no request can scan the whole history.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crunch_engine.db.repositories.prediction_views import PredictionView, select_views, to_views
from crunch_engine.db.tables import ModelScoreRow, PredictionRow, ScoreBucketRow
from crunch_engine.timeutil import ensure_utc, parse_iso


class CursorError(ValueError):
    """A pagination cursor that this API did not produce."""


@dataclass(frozen=True, slots=True)
class PredictionCursor:
    """Position after the last row of a page: (performed_at, id), newest first."""

    performed_at: datetime
    prediction_id: str

    def encode(self) -> str:
        raw = f"{self.performed_at.isoformat()}|{self.prediction_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PredictionCursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            stamp, prediction_id = raw.split("|", 1)
            return cls(parse_iso(stamp), prediction_id)
        except (ValueError, binascii.Error, UnicodeDecodeError) as error:
            raise CursorError(f"cursor {token!r} is not valid: {error}") from None


class ReportQueries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def predictions_page(
        self,
        *,
        model_ids: Sequence[str] | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        cursor: PredictionCursor | None,
    ) -> tuple[list[PredictionView], PredictionCursor | None]:
        """Up to ``limit`` predictions newest first, and the cursor of the next page."""
        statement = select_views()
        if model_ids:
            statement = statement.where(PredictionRow.model_id.in_(list(model_ids)))
        if start is not None:
            statement = statement.where(PredictionRow.performed_at >= ensure_utc(start))
        if end is not None:
            statement = statement.where(PredictionRow.performed_at <= ensure_utc(end))
        if cursor is not None:
            at = ensure_utc(cursor.performed_at)
            statement = statement.where(
                or_(
                    PredictionRow.performed_at < at,
                    and_(PredictionRow.performed_at == at, PredictionRow.id < cursor.prediction_id),
                )
            )
        statement = statement.order_by(
            PredictionRow.performed_at.desc(), PredictionRow.id.desc()
        ).limit(limit + 1)
        async with self._sessions() as session:
            rows = to_views(await session.execute(statement))
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        last = rows[-1]
        return rows, PredictionCursor(last.performed_at, last.id)

    async def model_scores_between(
        self,
        leaderboard_key: str,
        *,
        model_ids: Sequence[str] | None,
        start: datetime,
        end: datetime,
        limit: int,
    ) -> list[ModelScoreRow]:
        """Per-model score snapshots in [start, end], OLDEST first (a chart's x order)."""
        statement = select(ModelScoreRow).where(
            ModelScoreRow.leaderboard_key == leaderboard_key,
            ModelScoreRow.computed_at >= ensure_utc(start),
            ModelScoreRow.computed_at <= ensure_utc(end),
        )
        if model_ids:
            statement = statement.where(ModelScoreRow.model_id.in_(list(model_ids)))
        # The newest ``limit`` points, returned oldest first.
        newest = statement.order_by(ModelScoreRow.computed_at.desc(), ModelScoreRow.model_id).limit(
            limit
        )
        async with self._sessions() as session:
            rows = list((await session.scalars(newest)).all())
        rows.reverse()
        return rows

    async def score_buckets_between(
        self,
        *,
        model_ids: Sequence[str] | None,
        start: datetime,
        end: datetime,
        limit: int,
    ) -> list[ScoreBucketRow]:
        """Hourly (model, scope) score sums in [start, end], OLDEST first."""
        statement = select(ScoreBucketRow).where(
            ScoreBucketRow.bucket_start >= ensure_utc(start),
            ScoreBucketRow.bucket_start <= ensure_utc(end),
        )
        if model_ids:
            statement = statement.where(ScoreBucketRow.model_id.in_(list(model_ids)))
        newest = statement.order_by(
            ScoreBucketRow.bucket_start.desc(), ScoreBucketRow.model_id, ScoreBucketRow.scope_key
        ).limit(limit)
        async with self._sessions() as session:
            rows = list((await session.scalars(newest)).all())
        rows.reverse()
        return rows
