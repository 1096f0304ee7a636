"""Participant models: identity, orchestrator state and health, written in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crunch_engine.db.repositories.batching import upsert_rows
from crunch_engine.db.tables import ModelRow
from crunch_engine.timeutil import utc_now

_MODELS = ModelRow.__table__


@dataclass(slots=True)
class ModelInfo:
    id: str
    name: str
    player_id: str | None = None
    player_name: str | None = None
    deployment_id: str | None = None
    state: str = "UNKNOWN"
    meta: dict[str, Any] = field(default_factory=dict)


class ModelRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def upsert(self, models: Sequence[ModelInfo]) -> None:
        """Create or refresh models (identity and state); scores and health are kept."""
        now = utc_now()
        rows = [
            {
                "id": m.id,
                "name": m.name,
                "player_id": m.player_id,
                "player_name": m.player_name,
                "deployment_id": m.deployment_id,
                "state": m.state,
                "overall_score_jsonb": {},
                "scores_by_scope_jsonb": {},
                "health_jsonb": {},
                "meta_jsonb": m.meta,
                "created_at": now,
                "updated_at": now,
            }
            for m in models
        ]
        update = ("name", "player_id", "player_name", "deployment_id", "state", "meta_jsonb")
        async with self._sessions.begin() as session:
            await upsert_rows(
                session,
                _MODELS,
                rows,
                conflict_columns=("id",),
                update_columns=(*update, "updated_at"),
            )

    async def ensure_known(self, model_ids: Sequence[str]) -> None:
        """Insert bare rows for ids never seen before (so predictions can reference them)."""
        now = utc_now()
        rows = [
            {
                "id": model_id,
                "name": model_id,
                "state": "UNKNOWN",
                "overall_score_jsonb": {},
                "scores_by_scope_jsonb": {},
                "health_jsonb": {},
                "meta_jsonb": {},
                "created_at": now,
                "updated_at": now,
            }
            for model_id in model_ids
        ]
        async with self._sessions.begin() as session:
            await upsert_rows(session, _MODELS, rows, conflict_columns=("id",), update_columns=None)

    async def update_health(self, health: dict[str, dict[str, Any]]) -> None:
        """Replace the health record of each model in ``health`` (one bulk UPDATE)."""
        if not health:
            return
        now = utc_now()
        rows = [
            {"id": model_id, "health_jsonb": record, "updated_at": now}
            for model_id, record in health.items()
        ]
        async with self._sessions.begin() as session:
            known = set(
                (await session.scalars(select(ModelRow.id).where(ModelRow.id.in_(health)))).all()
            )
            rows = [row for row in rows if row["id"] in known]
            if rows:
                await session.execute(update(ModelRow), rows)

    async def list(self) -> list[ModelRow]:
        async with self._sessions() as session:
            return list((await session.scalars(select(ModelRow).order_by(ModelRow.id))).all())

    async def get(self, model_id: str) -> ModelRow | None:
        async with self._sessions() as session:
            return await session.get(ModelRow, model_id)
