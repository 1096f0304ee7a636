"""A fake engine with fixed data implementing the same ``ControlPlane`` protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from crunch_tui.control import ProcessAction, StreamEvent, Unreachable
from crunch_tui.snapshots import (
    FeedTape,
    LeaderboardRow,
    LogLine,
    ModelHealth,
    Prediction,
    ProcessInfo,
)

T0 = datetime(2026, 11, 23, 19, 40, tzinfo=UTC)
WINDOWS = ("recent", "steady", "anchor")
MARKUP_LINE = "[red]not markup[/red] and [bold]brackets[/bold]"


def _leaderboard(n: int) -> list[LeaderboardRow]:
    rows = []
    for i in range(n):
        base = 0.18 + i * 0.007
        rows.append(
            LeaderboardRow(
                rank=i + 1,
                model_id=f"model-{i:03d}",
                model_name=f"tracker-{i:03d}",
                cruncher_name=f"cruncher{i % 7}",
                scores={"recent": base, "steady": base + 0.01, "anchor": base + 0.02},
                counts={"recent": 120 + i, "steady": 300 + i, "anchor": 700 + i},
                status="ACTIVE",
                rank_change=(None if i == 4 else (2 if i == 1 else (-1 if i == 2 else 0))),
                updated_at=T0,
            )
        )
    return rows


def _health(n: int) -> list[ModelHealth]:
    rows = []
    for i in range(n):
        failing = i == 2
        absent = i == 3
        rows.append(
            ModelHealth(
                model_id=f"model-{i:03d}",
                model_name=f"tracker-{i:03d}",
                state="STOPPED" if absent else "RUNNING",
                deployment_id=f"dep-{i:03d}-a1",
                latency_p50_ms=1.5 + i / 10,
                latency_p95_ms=4.0 + i / 10,
                counts={"SUCCESS": 100 - i, "FAILED": 5 if failing else 0, "TIMEOUT": 0},
                consecutive_failures=3 if failing else 0,
                last_error="ZeroDivisionError: division by zero [in predict]" if failing else None,
                last_error_at=T0 if failing else None,
                restarts=1 if failing else 0,
            )
        )
    return rows


def _processes() -> list[ProcessInfo]:
    def proc(name: str, state: str, pid: int | None, **kw: Any) -> ProcessInfo:
        return ProcessInfo(
            name=name,
            state=state,
            pid=pid,
            uptime_seconds=kw.get("uptime", 3725.0 if pid else None),
            restarts=kw.get("restarts", 0),
            last_exit_code=kw.get("exit_code"),
            last_stderr=tuple(kw.get("stderr", ())),
            cpu_percent=kw.get("cpu", 1.5 if pid else None),
            rss_bytes=kw.get("rss", 80 * 1_048_576 if pid else None),
            argv=("crunch", "worker", name),
        )

    return [
        proc("market-data", "running", 4101),
        proc("orchestrator", "running", 4102, cpu=3.2),
        proc("predict", "running", 4103, restarts=1),
        proc(
            "score",
            "fatal",
            None,
            restarts=5,
            exit_code=2,
            stderr=["Traceback (most recent call last):", "ValueError: [bad] scoring slot"],
        ),
    ]


def _logs() -> list[LogLine]:
    lines = [
        ("market-data", "stdout", "INFO ingested 12 candles for BTC"),
        ("predict", "stdout", "\x1b[32mINFO\x1b[0m cycle 42: 8 models, 8 SUCCESS"),
        ("predict", "stderr", "WARNING model tracker-002 failed: ZeroDivisionError"),
        ("score", "stderr", "ERROR scoring slot failed"),
        ("orchestrator", "stdout", f"INFO {MARKUP_LINE}"),
        ("market-data", "stdout", "DEBUG watermark 2026-11-23T19:40:00Z"),
    ]
    return [
        LogLine(seq=i + 1, process=p, stream=s, line=text, ts=T0 + timedelta(seconds=i))
        for i, (p, s, text) in enumerate(lines)
    ]


def _feeds() -> list[FeedTape]:
    prices = tuple(97_000 + 35 * ((i * 7) % 11) - 3 * i for i in range(40))
    times = tuple(T0 + timedelta(seconds=5 * i) for i in range(40))
    return [FeedTape("replay", "BTC", "candle", "5s", times, prices)]


class FakeControlPlane:
    """Fixed data; records every action; ``down`` makes every call raise ``Unreachable``."""

    def __init__(self, n_models: int = 6, leaderboard: bool = True) -> None:
        self.url = "http://fake:8000"
        self.n_models = n_models
        self.board = _leaderboard(n_models) if leaderboard else []
        self.health = _health(n_models)
        self.procs = _processes()
        self.log_lines = _logs()
        self.feeds = _feeds()
        self.actions: list[tuple[str, str]] = []
        self.prediction_requests: list[str] = []
        self.down = False
        self.polls = 0
        self._events: asyncio.Queue[StreamEvent] | None = None
        self.closed = False

    def _check(self) -> None:
        if self.down:
            raise Unreachable(f"{self.url} unreachable (ConnectError)")

    async def info(self) -> Mapping[str, Any]:
        self._check()
        return {
            "crunch_id": "local",
            "version": "0.1.0",
            "pack": "demo",
            "database": "sqlite",
            "feed_provider": "replay",
            "leaderboards": ["overall"],
            "control": {"enabled": True, "requires_key": True},
        }

    async def leaderboard(self) -> list[LeaderboardRow]:
        self._check()
        self.polls += 1
        return list(self.board)

    async def models_health(self) -> list[ModelHealth]:
        self._check()
        return list(self.health)

    async def processes(self) -> list[ProcessInfo]:
        self._check()
        return list(self.procs)

    async def process_action(self, name: str, action: ProcessAction) -> ProcessInfo:
        self._check()
        self.actions.append((name, action))
        proc = next(p for p in self.procs if p.name == name)
        return proc

    async def logs(self, process: str | None = None, limit: int = 200) -> list[LogLine]:
        self._check()
        return [line for line in self.log_lines if process in (None, line.process)][-limit:]

    async def stream(self) -> AsyncIterator[StreamEvent]:
        self._check()
        if self._events is None:
            self._events = asyncio.Queue()
        while True:
            yield await self._events.get()

    def push(self, event: StreamEvent) -> None:
        if self._events is None:
            self._events = asyncio.Queue()
        self._events.put_nowait(event)

    async def feed_tapes(self, limit: int = 60) -> list[FeedTape]:
        self._check()
        return list(self.feeds)

    async def predictions(self, model_id: str, limit: int = 20) -> list[Prediction]:
        self._check()
        self.prediction_requests.append(model_id)
        return [
            Prediction(
                id=f"{model_id}-p{i}",
                scope_key="btc-up-30s",
                status="SUCCESS" if i % 4 else "FAILED",
                score_value=None if i % 4 == 0 else 0.2 + i / 100,
                score_failed_reason="model failed" if i % 4 == 0 else None,
                performed_at=T0 - timedelta(seconds=5 * i),
                scored_at=None if i % 4 == 0 else T0 - timedelta(seconds=5 * i - 35),
            )
            for i in range(min(limit, 8))
        ]

    async def aclose(self) -> None:
        self.closed = True
