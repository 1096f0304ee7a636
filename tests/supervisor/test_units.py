"""The pure parts of the supervisor: backoff, line splitting, fan-out, models, worker specs."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from crunch_engine.settings import Settings
from crunch_engine.supervisor import (
    WORKER_MODULES,
    Backoff,
    LogLine,
    ProcessInfo,
    ProcessSpec,
    ProcessState,
    Supervisor,
    SupervisorEvent,
    UnknownProcessError,
    default_specs,
)
from crunch_engine.supervisor.events import EventHub
from crunch_engine.supervisor.lines import MAX_LINE_BYTES, LineSplitter, decode_line
from crunch_engine.supervisor.managed import TRANSITIONS


def test_backoff_grows_by_factor_up_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, cap=30.0, jitter=0.0)
    assert [backoff.base(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.base(10_000) == 30.0  # no float overflow on a very long crash loop
    with pytest.raises(ValueError):
        backoff.base(-1)


def test_backoff_jitter_only_shortens_and_stays_in_bounds() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, cap=30.0, jitter=0.2)
    rng = random.Random(7)
    for attempt in range(8):
        base = backoff.base(attempt)
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(0.8 * base <= d <= base for d in delays)
        assert len(set(delays)) > 1  # actually jittered
    assert max(backoff.delay(50, rng) for _ in range(100)) <= 30.0


def test_backoff_defaults_match_the_issue() -> None:
    backoff = Backoff.from_spec(ProcessSpec(name="w", argv=["x"]))
    assert (backoff.initial, backoff.factor, backoff.cap) == (1.0, 2.0, 30.0)


def test_line_splitter_keeps_raw_text() -> None:
    splitter = LineSplitter()
    ansi = b"\x1b[31mred\x1b[0m [red]x[/red]"
    assert splitter.feed(ansi + b"\nsecond") == ["\x1b[31mred\x1b[0m [red]x[/red]"]
    assert splitter.feed(b" half\r\n\n") == ["second half", ""]
    assert splitter.feed(b"bad \xff\xfe bytes\nno newline at end") == ["bad \ufffd\ufffd bytes"]
    assert splitter.flush() == ["no newline at end"]
    assert splitter.flush() == []


def test_line_splitter_caps_long_lines_and_resyncs() -> None:
    splitter = LineSplitter(max_bytes=10)
    out = splitter.feed(b"x" * 25)
    assert out == ["x" * 10 + "…"]
    assert splitter.feed(b"y" * 30) == []  # still the same overlong line: dropped
    assert splitter.feed(b"yy\nshort\n") == ["short"]
    assert decode_line(b"z" * (MAX_LINE_BYTES + 5)) == "z" * MAX_LINE_BYTES + "…"
    assert splitter.feed(b"a" * 12 + b"\n") == ["a" * 10 + "…"]


def event(n: int) -> SupervisorEvent:
    line = LogLine(seq=n, process="p", stream="stdout", ts=datetime.now(UTC), line=str(n))
    return SupervisorEvent(kind="log", process="p", line=line)


async def test_hub_drops_oldest_for_a_full_subscriber_and_never_blocks() -> None:
    hub = EventHub(queue_size=3)
    slow = hub.subscribe()
    for n in range(10):
        hub.publish(event(n))
    assert slow.dropped == 7
    got = []
    hub.finish_all()
    async for item in slow:
        got.append(item.line.seq if item.line else None)
    assert got == [7, 8, 9]  # buffered events are delivered after finish, then it ends


async def test_subscription_close_and_context_manager_unsubscribe() -> None:
    hub = EventHub()
    async with hub.subscribe() as subscription:
        assert len(hub) == 1
        hub.publish(event(1))
        assert (await anext(subscription)).line.seq == 1  # type: ignore[union-attr]
    assert len(hub) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(subscription)

    waiting = hub.subscribe()
    reader = asyncio.create_task(anext(waiting))
    await asyncio.sleep(0.01)
    await waiting.aclose()  # wakes a reader blocked on an empty queue
    with pytest.raises(StopAsyncIteration):
        await reader


def test_dropped_subscription_unsubscribes_itself() -> None:
    hub = EventHub()
    hub.subscribe()  # never kept: garbage, must not stay subscribed
    import gc

    gc.collect()
    assert len(hub) == 0


def test_models_match_the_api_contract() -> None:
    assert [s.value for s in ProcessState] == [
        "starting",
        "running",
        "backoff",
        "exited",
        "fatal",
        "stopping",
        "stopped",
    ]
    assert list(ProcessInfo.model_fields) == [
        "name",
        "state",
        "pid",
        "started_at",
        "uptime_seconds",
        "restarts",
        "last_exit_code",
        "last_stderr",
        "cpu_percent",
        "rss_bytes",
        "heartbeat_at",
        "argv",
    ]
    assert list(LogLine.model_fields) == ["seq", "process", "stream", "ts", "line"]
    info = ProcessInfo(name="w", state=ProcessState.RUNNING)
    assert info.model_dump(mode="json")["state"] == "running"
    assert set(TRANSITIONS) == set(ProcessState)


def test_spec_validation() -> None:
    spec = ProcessSpec(name="w", argv=["prog"])
    assert spec.stable_after_seconds == 3.0
    assert spec.max_quick_failures == 5
    assert spec.stop_grace_seconds == 5.0
    assert spec.restart == "always"
    for bad in (
        {"name": "", "argv": ["x"]},
        {"name": "w", "argv": []},
        {"name": "w", "argv": [""]},
        {"name": "w", "argv": ["x"], "restart": "sometimes"},
        {"name": "w", "argv": ["x"], "unknown_field": 1},
    ):
        with pytest.raises(ValidationError):
            ProcessSpec(**bad)


def test_unknown_process_names_the_known_ones() -> None:
    supervisor = Supervisor([ProcessSpec(name="a", argv=["x"]), ProcessSpec(name="b", argv=["x"])])
    with pytest.raises(UnknownProcessError) as caught:
        supervisor.process("nope")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == "unknown process 'nope'; known processes: a, b"
    with pytest.raises(UnknownProcessError, match="known processes: a, b"):
        supervisor.logs("nope")
    with pytest.raises(ValueError, match="duplicate process names: a"):
        Supervisor([ProcessSpec(name="a", argv=["x"]), ProcessSpec(name="a", argv=["y"])])


async def test_unknown_process_actions_raise() -> None:
    supervisor = Supervisor([ProcessSpec(name="a", argv=["x"])])
    for action in (supervisor.start_process, supervisor.stop_process, supervisor.restart_process):
        with pytest.raises(UnknownProcessError, match="unknown process 'ghost'"):
            await action("ghost")


def test_default_specs_are_the_four_workers(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    specs = default_specs(settings, {"EXTRA": "1"})
    assert [s.name for s in specs] == ["market-data", "orchestrator", "predict", "score"]
    for spec in specs:
        module = WORKER_MODULES[spec.name]
        assert spec.argv == [sys.executable, "-m", module]
        assert importlib.util.find_spec(module) is not None
        assert spec.env is None  # inherits os.environ
        assert spec.extra_env["EXTRA"] == "1"
        assert spec.extra_env["CRUNCH_DATA_DIR"] == str((tmp_path / "data").resolve())
        assert spec.autostart and spec.restart == "always"
