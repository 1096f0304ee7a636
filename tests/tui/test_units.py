"""Units below the screens: the HTTP control plane (over a mock transport), SSE framing,
the log book, and JSON parsing that tolerates missing fields."""

from __future__ import annotations

import json

import httpx
import pytest

from crunch_tui.collect import collect
from crunch_tui.control import ApiError, ControlPlane, HttpControlPlane, Unreachable
from crunch_tui.logbook import LogBook, level_of
from crunch_tui.snapshots import LeaderboardRow, LogLine, ProcessInfo, Snapshot
from tests.tui.conftest import frozen_clock
from tests.tui.fake import FakeControlPlane

BOARD = [
    {
        "rank": 1,
        "model_id": "m1",
        "model_name": "alpha",
        "cruncher_name": "ann",
        "score_recent": 0.2,
        "score_steady": None,
        "count_recent": 12,
        "count_steady": 0,
        "status": "ACTIVE",
        "rank_change": None,
        "updated_at": "2026-11-23T19:40:00+00:00",
    }
]
SSE = (
    ": ping\n\n"
    'event: log\ndata: {"seq": 1, "process": "predict", "stream": "stdout", '
    '"ts": "2026-11-23T19:40:00Z", "line": "[red]x[/red]"}\n\n'
    'event: state\ndata: {"name": "score", "state": "backoff", "pid": null, '
    '"restarts": 2, "last_exit_code": 1, "last_stderr": ["boom"]}\n\n'
    "event: other\ndata: {}\n\n"
)


def _handler(seen: list[httpx.Request]):  # type: ignore[no-untyped-def]
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/reports/leaderboard":
            return httpx.Response(200, json=BOARD)
        if path == "/control/processes" and "x-api-key" not in request.headers:
            return httpx.Response(401, json={"detail": "missing API key"})
        if path == "/control/processes/score/restart" and request.method == "POST":
            return httpx.Response(200, json={"name": "score", "state": "starting", "pid": 7})
        if path == "/control/logs/stream":
            return httpx.Response(200, text=SSE, headers={"content-type": "text/event-stream"})
        if path == "/reports/feeds":
            return httpx.Response(
                200,
                json=[
                    {"source": "replay", "subject": "BTC", "kind": "candle", "granularity": "5s"}
                ],
            )
        if path == "/reports/feeds/tail":
            assert request.url.params["subject"] == "BTC"
            records = [
                {"ts_event": f"2026-11-23T19:40:{s:02d}Z", "values": {"close": 100.0 + s}}
                for s in (10, 5, 0)
            ]
            return httpx.Response(200, json=records)
        if path == "/reports/predictions":
            assert request.url.params["projectIds"] == "m1"
            return httpx.Response(200, json=[{"id": "p1", "status": "SUCCESS", "score_value": 0.1}])
        return httpx.Response(404, json={"detail": f"no {path}"})

    return handle


async def test_http_control_plane_sends_the_key_and_parses():
    seen: list[httpx.Request] = []
    plane = HttpControlPlane("http://x:1/", "k3y", transport=httpx.MockTransport(_handler(seen)))
    assert isinstance(plane, ControlPlane)
    rows = await plane.leaderboard()
    assert rows[0].scores == {"recent": 0.2, "steady": None}
    assert rows[0].counts == {"recent": 12, "steady": 0}
    assert rows[0].rank_change is None
    assert seen[-1].headers["X-API-Key"] == "k3y"
    assert "k3y" not in str(seen[-1].url)  # never in the query string
    info = await plane.process_action("score", "restart")
    assert (info.name, info.state, info.pid) == ("score", "starting", 7)
    (tape,) = await plane.feed_tapes()
    assert tape.prices == (100.0, 105.0, 110.0)  # oldest first for the Sparkline
    (prediction,) = await plane.predictions("m1")
    assert prediction.score_value == 0.1
    events = [event async for event in plane.stream()]
    assert isinstance(events[0], LogLine) and events[0].line == "[red]x[/red]"
    assert isinstance(events[1], ProcessInfo) and events[1].last_stderr == ("boom",)
    assert len(events) == 2
    await plane.aclose()


async def test_http_errors_become_control_errors():
    plane = HttpControlPlane("http://x:1", transport=httpx.MockTransport(_handler([])))
    with pytest.raises(ApiError) as refused:
        await plane.processes()
    assert refused.value.status == 401 and "missing API key" in str(refused.value)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    dead = HttpControlPlane("http://x:1", transport=httpx.MockTransport(down))
    with pytest.raises(Unreachable, match="unreachable"):
        await dead.info()
    with pytest.raises(Unreachable):
        async for _ in dead.stream():
            pass


async def test_collect_keeps_going_when_one_part_is_refused():
    plane = HttpControlPlane("http://x:1", transport=httpx.MockTransport(_handler([])))
    snapshot = await collect(plane, Snapshot(), frozen_clock)
    assert [r.model_id for r in snapshot.leaderboard] == ["m1"]
    assert snapshot.windows == ("recent", "steady")
    assert any("pass --api-key" in p for p in snapshot.problems)
    assert snapshot.serial == 1 and snapshot.fetched_at == frozen_clock()


async def test_collect_from_fake_summarises_health():
    snapshot = await collect(FakeControlPlane(), Snapshot(), frozen_clock)
    assert (snapshot.summary.running, snapshot.summary.failing, snapshot.summary.absent) == (
        4,
        1,
        1,
    )


def test_parsing_tolerates_missing_and_bad_fields():
    row = LeaderboardRow.from_json({"model_id": "m", "rank": "x", "score_a": "nan?"})
    assert (row.rank, row.model_name, row.scores) == (0, "m", {"a": None})
    info = ProcessInfo.from_json({"name": "w"})
    assert (info.state, info.pid, info.last_stderr) == ("unknown", None, ())
    line = LogLine.from_json(json.loads('{"line": "x", "ts": "not a time"}'))
    assert line.ts is None and line.process == "?"


def test_logbook_dedupes_filters_and_pages():
    book = LogBook(maxlen=5)
    lines = [
        LogLine(seq=i, process="a" if i % 2 else "b", stream="stdout", line=f"INFO {i}")
        for i in range(1, 8)
    ]
    assert book.extend(lines) == 7
    assert book.extend(lines[-2:]) == 0  # already seen
    assert len(book) == 5 and book.index == 7
    assert [e.line.seq for e in book.since(5)] == [6, 7]
    assert [e.line.seq for e in book.select("a")] == [3, 5, 7]
    assert [e.line.seq for e in book.select(None, needle="6")] == [6]
    assert book.processes == ["a", "b"]


@pytest.mark.parametrize(
    ("line", "stream", "level"),
    [
        ("2026 INFO ok", "stdout", 1),
        ("DEBUG x", "stdout", 0),
        ("x ERROR y", "stdout", 3),
        ("Traceback (most recent call last):", "stderr", 2),
        ("plain", "stdout", 1),
        ("WARNING: careful", "stdout", 2),
    ],
)
def test_level_detection(line: str, stream: str, level: int):
    assert level_of(line, stream) == level
