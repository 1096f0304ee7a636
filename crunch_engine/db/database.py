"""One object per process that owns the engine, the session factory and the repositories."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from crunch_engine.db.engine import create_engine, create_session_factory
from crunch_engine.db.migrate import current_revision, head_revision
from crunch_engine.db.repositories.configs import ScheduledConfigRepository
from crunch_engine.db.repositories.leaderboards import LeaderboardRepository
from crunch_engine.db.repositories.market import MarketRepository
from crunch_engine.db.repositories.models import ModelRepository
from crunch_engine.db.repositories.predictions import PredictionRepository
from crunch_engine.db.repositories.scores import ScoreRepository
from crunch_engine.errors import ConfigError
from crunch_engine.settings import redact_url


class Database:
    def __init__(self, url: str, *, engine: AsyncEngine | None = None) -> None:
        self.url = url
        self.engine = engine or create_engine(url)
        self.sessions = create_session_factory(self.engine)
        self.market = MarketRepository(self.sessions)
        self.models = ModelRepository(self.sessions)
        self.predictions = PredictionRepository(self.sessions)
        self.leaderboards = LeaderboardRepository(self.sessions)
        self.configs = ScheduledConfigRepository(self.sessions)
        self.scores = ScoreRepository(self.sessions)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def require_current_schema(self) -> None:
        """Workers refuse to run on a database that is not migrated to head."""
        current, head = await current_revision(self.engine), head_revision()
        if current != head:
            raise ConfigError(
                f"database {redact_url(self.url)} is at revision {current or 'none'}, "
                f"expected {head}: run `crunch db upgrade`"
            )

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
