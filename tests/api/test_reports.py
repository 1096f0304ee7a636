"""Report endpoints of a real `crunch serve` (SQLite and PostgreSQL) after a short real
pipeline run on the offline demo: shapes of the Crunch web UI contract, pagination,
offsets on every timestamp, and 4xx (never 500) for bad input."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.api.live import DEMO_MODELS, LiveServer

pytestmark = pytest.mark.slow


def has_offset(text: str) -> bool:
    return datetime.fromisoformat(text).utcoffset() is not None


def test_health_info_and_schema(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/healthz").json()["status"] == "ok"
        info = client.get("/info").json()
        assert info["pack"] == "demo" and info["leaderboards"] == ["overall"]
        assert info["control"] == {"enabled": True, "requires_key": True, "available": True}
        assert info["database"] in {"sqlite", "postgresql"}
        schema = client.get("/reports/schema").json()
        columns = schema["leaderboard_columns"]
        assert columns[0]["type"] == "PROJECT" and columns[0]["property"] == "model_id"
        assert [c["order"] for c in columns] == sorted(c["order"] for c in columns)
        assert client.get("/reports/schema/leaderboard-columns").json() == columns
        widgets = client.get("/reports/schema/metrics-widgets").json()
        assert widgets == schema["metrics_widgets"]
        assert widgets[0]["endpointUrl"] == "/reports/models/global"


def test_leaderboard_rows_follow_the_newest_snapshot(live_server: LiveServer) -> None:
    with live_server.client() as client:
        rows = client.get("/reports/leaderboard").json()
        snapshot = client.get("/reports/snapshots", params={"limit": 1}).json()[0]
        models = client.get("/reports/models").json()
    assert {r["model_id"] for r in rows} >= DEMO_MODELS
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    properties = {"model_id", "score_recent", "score_steady", "score_anchor", "status"}
    assert properties <= set(rows[0])
    names = {m["model_id"]: m["model_name"] for m in models}
    for row in rows:
        assert row["model_name"] == names[row["model_id"]]
        assert has_offset(row["updated_at"])
    # The leaderboard may have moved on between the two reads: compare when it did not.
    if snapshot["created_at"] == rows[0]["updated_at"]:
        assert [e["model_id"] for e in snapshot["entries"]] == [r["model_id"] for r in rows]
    assert all(isinstance(m[k], str) for m in models for k in m)


def test_metrics_series_are_flat_and_filterable(live_server: LiveServer) -> None:
    with live_server.client() as client:
        rows = client.get("/reports/models/global").json()
        assert rows and {r["model_id"] for r in rows} >= DEMO_MODELS
        first = rows[0]
        assert has_offset(first["performed_at"]) and "score_recent" in first
        assert first["ranking"]["key"] == "score_recent"
        times = [datetime.fromisoformat(r["performed_at"]) for r in rows]
        assert times == sorted(times)
        one = client.get("/reports/models/global", params={"projectIds": "momentum"}).json()
        assert one and {r["model_id"] for r in one} == {"momentum"}
        two = client.get("/reports/models/global", params={"projectIds": "momentum,noisy"})
        assert {r["model_id"] for r in two.json()} == {"momentum", "noisy"}
        future = client.get(
            "/reports/models/global",
            params={"start": "2099-01-01T00:00:00Z", "end": "2099-01-02T00:00:00+02:00"},
        ).json()
        assert future == []
        params = client.get("/reports/models/params").json()
        assert params and params[0]["asset"] == "BTC" and params[0]["scope_key"] == "btc-up-30s"
        assert params[0]["count"] >= 1 and has_offset(params[0]["performed_at"])


def test_predictions_are_paginated_newest_first(live_server: LiveServer) -> None:
    with live_server.client() as client:
        first = client.get("/reports/predictions", params={"limit": 4})
        assert first.status_code == 200
        page = first.json()
        assert len(page) == 4
        cursor = first.headers["X-Next-Cursor"]
        second = client.get("/reports/predictions", params={"limit": 4, "cursor": cursor}).json()
        assert second and not {p["id"] for p in page} & {p["id"] for p in second}
        keys = [(p["performed_at"], p["id"]) for p in page + second]
        assert keys == sorted(keys, reverse=True)
        row = page[0]
        assert {"score_value", "score_failed", "scope", "scope_key", "status"} <= set(row)
        assert has_offset(row["performed_at"]) and has_offset(row["resolvable_at"])
        scored = client.get("/reports/predictions", params={"limit": 200}).json()
        done = [p for p in scored if p["score_status"] == "SCORED"]
        assert done and all(has_offset(p["scored_at"]) for p in done)
        only = client.get("/reports/predictions", params={"projectIds": "noisy"}).json()
        assert only and {p["model_id"] for p in only} == {"noisy"}


def test_unknown_project_ids(live_server: LiveServer) -> None:
    """A typo is a 404 naming the id; a removed model among known ones is not."""
    with live_server.client() as client:
        for path in ("/reports/predictions", "/reports/models/global", "/reports/models/params"):
            typo = client.get(path, params={"projectIds": "nosiy"})
            assert typo.status_code == 404, path
            assert "nosiy" in typo.json()["detail"] and "/reports/models" in typo.json()["detail"]
        mixed = client.get("/reports/predictions", params={"projectIds": "noisy,gone"})
        assert mixed.status_code == 200
        assert mixed.json() and {p["model_id"] for p in mixed.json()} == {"noisy"}


def test_feeds_and_tail(live_server: LiveServer) -> None:
    with live_server.client() as client:
        feeds = client.get("/reports/feeds").json()
        assert feeds and feeds[0]["source"] == "replay" and feeds[0]["subject"] == "BTC"
        assert feeds[0]["record_count"] > 0 and has_offset(feeds[0]["watermark_ts"])
        feed = feeds[0]
        tail = client.get(
            "/reports/feeds/tail",
            params={
                "source": feed["source"],
                "subject": feed["subject"],
                "kind": feed["kind"],
                "granularity": feed["granularity"],
                "limit": 20,
            },
        ).json()
        assert len(tail) == 20
        stamps = [r["ts_event"] for r in tail]
        assert stamps == sorted(stamps, reverse=True) and all(map(has_offset, stamps))
        assert "close" in tail[0]["values"]
        assert client.get("/reports/feeds/tail", params={"subject": "BTC"}).json() == tail
        assert client.get("/reports/feeds/tail", params={"subject": "DOGE"}).json() == []


@pytest.mark.parametrize(
    ("path", "params", "code", "message"),
    [
        ("/reports/leaderboard", {"key": "nope"}, 404, "unknown leaderboard 'nope'"),
        ("/reports/models/global", {"start": "yesterday"}, 400, "is not an ISO-8601 time"),
        (
            "/reports/models/global",
            {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            400,
            "is after end",
        ),
        ("/reports/predictions", {"cursor": "garbage!"}, 400, "cursor 'garbage!' is not valid"),
        ("/reports/predictions", {"limit": 0}, 422, ""),
        ("/reports/snapshots", {"key": "nope"}, 404, "known: overall"),
    ],
)
def test_bad_requests_get_clear_4xx(
    live_server: LiveServer, path: str, params: dict, code: int, message: str
) -> None:
    with live_server.client() as client:
        response = client.get(path, params=params)
    assert response.status_code == code, response.text
    assert message in str(response.json()["detail"])
