"""One real `crunch serve` per backend for the tests of this package (it takes ~40 s to
produce a leaderboard on the offline demo), shared by the API, fuzz and browser tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from crunch_engine.testing.postgres import TemporaryPostgres
from tests.api.live import LiveServer, start_serve, wait_for_leaderboard


def _run(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> Iterator[LiveServer]:
    server = start_serve(tmp_path_factory.mktemp(f"serve-{name}"), **env)
    try:
        wait_for_leaderboard(server)
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"crunch serve exited {code}:\n{server.output()[-3000:]}"


@pytest.fixture(scope="package")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from _run(tmp_path_factory, "sqlite")


@pytest.fixture(scope="package")
def postgresql_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: TemporaryPostgres
) -> Iterator[LiveServer]:
    name = asyncio.run(postgres_server.create_database())
    yield from _run(tmp_path_factory, "postgresql", CRUNCH_DATABASE_URL=postgres_server.url(name))


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def live_server(request: pytest.FixtureRequest) -> LiveServer:
    return request.getfixturevalue(f"{request.param}_server")
