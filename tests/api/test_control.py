"""Control endpoints of a real `crunch serve`: auth tiers, processes, restart through the
API, logs and their live SSE stream, model health."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import httpx
import pytest

from tests.api.live import DEMO_MODELS, LiveServer

pytestmark = pytest.mark.slow
WORKERS = {"market-data", "orchestrator", "predict", "score"}


def test_auth_tiers(live_server: LiveServer) -> None:
    with live_server.client() as client:
        missing = client.get("/control/processes")
        assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
        wrong = client.get("/control/processes", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and wrong.json()["detail"] == "the API key is not valid"
        # Never in the query string.
        query = client.get("/control/processes", params={"api_key": live_server.api_key})
        assert query.status_code == 401
        bearer = {"Authorization": f"Bearer {live_server.api_key}"}
        assert client.get("/control/processes", headers=bearer).status_code == 200
        assert client.post("/control/processes/score/restart").status_code == 401
        # Public and read tiers stay open (CRUNCH_API_READ_AUTH is off).
        for path in ("/reports/leaderboard", "/reports/models", "/reports/feeds", "/info"):
            assert client.get(path).status_code == 200, path
        assert client.get("/reports/predictions", params={"limit": 1}).status_code == 200


def test_processes_restart_and_unknown_names(live_server: LiveServer) -> None:
    with live_server.client(headers=live_server.headers()) as client:
        processes = {p["name"]: p for p in client.get("/control/processes").json()}
        assert set(processes) == WORKERS
        assert all(p["state"] == "running" and p["pid"] for p in processes.values())
        before = processes["score"]
        after = client.post("/control/processes/score/restart").json()
        assert after["name"] == "score" and after["pid"] != before["pid"]
        assert after["restarts"] >= before["restarts"]
        missing = client.get("/control/processes/nope")
        assert missing.status_code == 404 and "known processes" in missing.json()["detail"]
        assert client.post("/control/processes/nope/restart").status_code == 404
        assert client.post("/control/processes/score/explode").status_code == 422
        deadline = time.monotonic() + 20
        while client.get("/control/processes/score").json()["state"] != "running":
            assert time.monotonic() < deadline, "score did not come back"
            time.sleep(0.5)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_keeps_a_worker_down_until_start(live_server: LiveServer) -> None:
    with live_server.client(headers=live_server.headers()) as client:
        deadline = time.monotonic() + 20
        while (before := client.get("/control/processes/score").json())["state"] != "running":
            assert time.monotonic() < deadline, "score is not running"
            time.sleep(0.5)
        stopped = client.post("/control/processes/score/stop")
        assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
        assert not pid_alive(before["pid"]), "stop returned before the process was gone"
        time.sleep(2)  # the supervisor must not bring a stopped worker back by itself
        assert client.get("/control/processes/score").json()["state"] == "stopped"
        started = client.post("/control/processes/score/start").json()
        assert started["state"] in {"starting", "running"} and started["pid"] != before["pid"]
        assert pid_alive(started["pid"])
        deadline = time.monotonic() + 20
        while client.get("/control/processes/score").json()["state"] != "running":
            assert time.monotonic() < deadline, "score did not come back"
            time.sleep(0.5)


def test_logs_and_live_stream(live_server: LiveServer) -> None:
    headers = live_server.headers()
    with live_server.client(headers=headers) as client:
        lines = client.get("/control/logs", params={"process": "predict", "limit": 50}).json()
        assert lines and all(line["process"] == "predict" for line in lines)
        seqs = [line["seq"] for line in lines]
        assert seqs == sorted(seqs)
        merged = client.get("/control/logs", params={"limit": 500}).json()
        assert {line["process"] for line in merged} >= {"predict", "score"}

    events: list[tuple[str, dict[str, Any]]] = []
    stop = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", f"{live_server.url}/control/logs/stream", headers=headers, timeout=30
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    events.append((kind, json.loads(line[6:])))
                if stop.is_set():
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(1.0)
    with live_server.client(headers=headers) as client:
        client.post("/control/processes/market-data/restart")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        kinds = {kind for kind, _ in events}
        states = {e["name"] for kind, e in events if kind == "state"}
        if {"log", "state"} <= kinds and "market-data" in states:
            break
        time.sleep(0.2)
    stop.set()
    assert {"log", "state"} <= {kind for kind, _ in events}, events[:5]
    log = next(e for kind, e in events if kind == "log")
    assert {"seq", "process", "stream", "ts", "line"} <= set(log)


def test_model_health(live_server: LiveServer) -> None:
    deadline = time.monotonic() + 30
    with live_server.client(headers=live_server.headers()) as client:
        while True:
            rows = {r["model_id"]: r for r in client.get("/control/models/health").json()}
            if set(rows) >= DEMO_MODELS and all(rows[m]["counts"] for m in DEMO_MODELS):
                break
            assert time.monotonic() < deadline, rows
            time.sleep(1)
    for model in DEMO_MODELS:
        row = rows[model]
        assert row["state"] == "RUNNING" and row["counts"].get("SUCCESS", 0) > 0
        assert row["latency_p50_ms"] is not None and row["latency_p50_ms"] > 0
