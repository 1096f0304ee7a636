"""One real `crunch serve` per backend for the whole API test session (it takes ~40 s
to produce a leaderboard on the offline demo, so the servers are shared)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from crunch_engine.testing.postgres import TemporaryPostgres
from tests.api.live import LiveServer, start_serve, wait_for_leaderboard


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    extra = {}
    if request.param == "postgresql":
        postgres: TemporaryPostgres = request.getfixturevalue("postgres_server")
        name = asyncio.run(postgres.create_database())
        extra["CRUNCH_DATABASE_URL"] = postgres.url(name)
    server = start_serve(tmp, **extra)
    try:
        wait_for_leaderboard(server)
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"crunch serve exited {code}:\n{server.output()[-3000:]}"
