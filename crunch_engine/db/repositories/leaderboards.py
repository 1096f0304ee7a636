"""Leaderboard snapshots: written by the score worker, read by the API and the TUI."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crunch_engine.db.tables import LeaderboardRow
from crunch_engine.timeutil import ensure_utc


class LeaderboardRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def insert(
        self,
        leaderboard_key: str,
        created_at: datetime,
        entries: list[dict[str, Any]],
        meta: dict[str, Any] | None = None,
    ) -> str:
        snapshot_id = uuid.uuid4().hex
        async with self._sessions.begin() as session:
            session.add(
                LeaderboardRow(
                    id=snapshot_id,
                    leaderboard_key=leaderboard_key,
                    created_at=ensure_utc(created_at),
                    entries_jsonb=entries,
                    meta_jsonb=meta or {},
                )
            )
        return snapshot_id

    async def latest(self, leaderboard_key: str) -> LeaderboardRow | None:
        """The NEWEST snapshot of a leaderboard."""
        statement = (
            select(LeaderboardRow)
            .where(LeaderboardRow.leaderboard_key == leaderboard_key)
            .order_by(LeaderboardRow.created_at.desc(), LeaderboardRow.id.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            return await session.scalar(statement)

    async def history(self, leaderboard_key: str, limit: int = 100) -> list[LeaderboardRow]:
        """The ``limit`` most recent snapshots, NEWEST first."""
        statement = (
            select(LeaderboardRow)
            .where(LeaderboardRow.leaderboard_key == leaderboard_key)
            .order_by(LeaderboardRow.created_at.desc(), LeaderboardRow.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.scalars(statement)).all())
