"""Scheduled prediction configs: the pack's schedules, mirrored into the database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crunch_engine.db.repositories.batching import upsert_rows
from crunch_engine.db.tables import ScheduledPredictionConfigRow
from crunch_engine.packs.manifest import ScheduledPredictionConfig
from crunch_engine.timeutil import utc_now

_TABLE = ScheduledPredictionConfigRow.__table__


class ScheduledConfigRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def sync(self, configs: Sequence[ScheduledPredictionConfig]) -> None:
        """Make the table match the pack: upsert every config, deactivate the others."""
        now = utc_now()
        rows = [
            {
                "id": c.id,
                "scope_key": c.scope_key,
                "scope_template_jsonb": c.scope_template,
                "schedule_jsonb": c.schedule.model_dump(),
                "active": c.active,
                "order": c.order,
                "meta_jsonb": {},
                "updated_at": now,
            }
            for c in configs
        ]
        columns = ("scope_key", "scope_template_jsonb", "schedule_jsonb", "active", "order")
        async with self._sessions.begin() as session:
            await session.execute(
                update(ScheduledPredictionConfigRow)
                .where(ScheduledPredictionConfigRow.id.not_in([c.id for c in configs]))
                .values(active=False, updated_at=now)
            )
            await upsert_rows(
                session,
                _TABLE,
                rows,
                conflict_columns=("id",),
                update_columns=(*columns, "updated_at"),
            )

    async def active(self) -> list[ScheduledPredictionConfigRow]:
        statement = (
            select(ScheduledPredictionConfigRow)
            .where(ScheduledPredictionConfigRow.active.is_(True))
            .order_by(ScheduledPredictionConfigRow.order, ScheduledPredictionConfigRow.scope_key)
        )
        async with self._sessions() as session:
            return list((await session.scalars(statement)).all())
