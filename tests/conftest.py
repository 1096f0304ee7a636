"""Shared fixtures: real SQLite files and a real PostgreSQL 15 server for the session.

Every test that takes ``database`` (or ``database_url``) runs twice: once on a fresh
SQLite file, once on a fresh PostgreSQL database cloned from a migrated template.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from crunch_engine.db.database import Database
from crunch_engine.db.migrate import upgrade_database
from crunch_engine.slots.spec import SlotName
from crunch_engine.testing.postgres import TemporaryPostgres

REPO_ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("sqlite", "postgresql")
PG_TEMPLATE = "crunch_template"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    server = TemporaryPostgres().start()
    try:
        asyncio.run(server.create_database(PG_TEMPLATE))
        asyncio.run(upgrade_database(server.url(PG_TEMPLATE)))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(upgrade_database(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the newest schema, on the backend of this test's parameter."""
    if backend == "sqlite":
        target = tmp_path / "crunch.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    server: TemporaryPostgres = request.getfixturevalue("postgres_server")
    name = asyncio.run(server.create_database(template=PG_TEMPLATE))
    try:
        yield server.url(name)
    finally:
        asyncio.run(server.drop_database(name))


@pytest.fixture
def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A database with no schema at all (to test migrations from scratch)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    server: TemporaryPostgres = request.getfixturevalue("postgres_server")
    name = asyncio.run(server.create_database())
    try:
        yield server.url(name)
    finally:
        asyncio.run(server.drop_database(name))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def crunch_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the `crunch` CLI as a subprocess in an isolated folder."""
    slots = {slot.value for slot in SlotName}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUNCH_") and k not in slots}
    env["CRUNCH_DATA_DIR"] = str(tmp_path / "data")
    env["COLUMNS"] = "200"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@pytest.fixture
def crunch_cmd() -> list[str]:
    return [sys.executable, "-m", "crunch_engine.cli"]


@pytest.fixture
async def postgres_database(postgres_server: TemporaryPostgres) -> AsyncIterator[Database]:
    """A fresh PostgreSQL database at head, for PostgreSQL-only behaviour."""
    name = await postgres_server.create_database(template=PG_TEMPLATE)
    db = Database(postgres_server.url(name))
    try:
        yield db
    finally:
        await db.close()
        await postgres_server.drop_database(name)
