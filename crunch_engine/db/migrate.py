"""Schema migrations (Alembic) driven from code: ``crunch db upgrade`` and the tests.

There is no ``create_all`` fallback: a migration that fails stops the process, so a
database is always at a known revision (the incumbent silently fell back and never
migrated again).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from crunch_engine.db.engine import create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> str | None:
    """Bring the database behind ``engine`` to ``revision``; returns the revision reached."""

    def _upgrade(connection: Connection) -> str | None:
        command.upgrade(alembic_config(connection), revision)
        return _current(connection)

    async with engine.begin() as connection:
        return await connection.run_sync(_upgrade)


async def upgrade_database(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the database at ``url``; returns (revision before, revision after)."""
    engine = create_engine(url)
    try:
        before = await current_revision(engine)
        after = await upgrade_engine(engine, revision)
        return before, after
    finally:
        await engine.dispose()


def upgrade_database_sync(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    return asyncio.run(upgrade_database(url, revision))
