"""The API app in-process over a real, empty database (both backends): empty reports,
the read tier, disabled control actions without a key, CORS, the web UI route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from crunch_engine.api import ApiContext, create_app
from crunch_engine.competition import load_competition
from crunch_engine.db.database import Database
from crunch_engine.settings import load_settings


def make_client(database: Database, **settings: object) -> httpx.AsyncClient:
    loaded = load_settings(**settings)
    context = ApiContext(loaded, database, load_competition(loaded, {}))
    transport = httpx.ASGITransport(app=create_app(context))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(database) as client:
        yield client


async def test_an_empty_engine_answers_with_empty_reports(client: httpx.AsyncClient) -> None:
    for path in (
        "/reports/leaderboard",
        "/reports/models",
        "/reports/models/global",
        "/reports/models/params",
        "/reports/predictions",
        "/reports/feeds",
        "/reports/feeds/tail",
        "/reports/snapshots",
        "/control/processes",
        "/control/logs",
        "/control/models/health",
    ):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == [], path
    info = (await client.get("/info")).json()
    assert info["control"] == {"enabled": False, "requires_key": False, "available": False}


async def test_control_actions_are_disabled_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.post("/control/processes/score/restart")
    assert response.status_code == 403
    assert "set CRUNCH_API_KEY" in response.json()["detail"]
    stream = await client.get("/control/logs/stream")
    assert stream.status_code == 404


async def test_read_tier_needs_the_key_when_configured(database: Database) -> None:
    async with make_client(database, api_key="s3cret", api_read_auth=True) as client:
        assert (await client.get("/reports/predictions")).status_code == 401
        assert (await client.get("/reports/models/global")).status_code == 401
        ok = await client.get("/reports/predictions", headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200
        # The public tier never needs it.
        for path in ("/reports/leaderboard", "/reports/models", "/reports/feeds", "/healthz"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/reports/schema")).status_code == 200


async def test_cors_only_for_configured_origins(database: Database) -> None:
    async with make_client(database, api_cors_origins="https://ui.example") as client:
        allowed = await client.get("/healthz", headers={"Origin": "https://ui.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_web_ui_and_docs_are_served(client: httpx.AsyncClient) -> None:
    index = await client.get("/")
    assert index.status_code == 200 and "<html" in index.text.lower()
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/reports/leaderboard" in spec["paths"] and "/control/processes" in spec["paths"]


async def test_nul_characters_are_refused_before_any_query(client: httpx.AsyncClient) -> None:
    for path in ("/reports/feeds/tail?subject=%00", "/reports/predictions?projectIds=a%00b"):
        response = await client.get(path)
        assert response.status_code == 400, path
        assert "NUL characters" in response.json()["detail"]


async def test_hot_reads_are_cached_gzipped_and_revalidated(database: Database) -> None:
    """A cached entry is replayed (gzipped when accepted); once stale it is still
    served while one background request refreshes it."""
    from crunch_engine.feeds.contracts import MarketRecord
    from crunch_engine.timeutil import utc_now

    async with make_client(database, api_cache_seconds=0.3) as client:
        assert (await client.get("/reports/feeds")).json() == []
        now = utc_now().replace(microsecond=0)
        await database.market.upsert(
            [MarketRecord("replay", "BTC", "candle", "1m", now, {"close": 1.0})]
        )
        assert (await client.get("/reports/feeds")).json() == []  # fresh cached entry
        await asyncio.sleep(0.35)
        assert (await client.get("/reports/feeds")).json() == []  # stale, refresh started
        for _ in range(50):
            rows = (await client.get("/reports/feeds")).json()
            if rows:
                break
            await asyncio.sleep(0.02)
        assert rows and rows[0]["subject"] == "BTC"
        zipped = await client.get("/reports/schema", headers={"Accept-Encoding": "gzip"})
        again = await client.get("/reports/schema", headers={"Accept-Encoding": "gzip"})
        assert again.headers["content-encoding"] == "gzip"
        assert again.json() == zipped.json()
        plain = await client.get("/reports/schema", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == zipped.json()
