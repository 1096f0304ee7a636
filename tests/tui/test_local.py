"""Local mode: the starting screen with the child's output, the switch to the dashboard
once the API answers, a failing start that explains itself, and quitting that stops the
child. The last tests drive ``LocalEngine`` through the real supervisor."""

from __future__ import annotations

import sys
import textwrap
from datetime import UTC, datetime

import psutil
import pytest

from crunch_tui.engine import ChildState, LocalEngine, free_port
from crunch_tui.screens.dashboard import DashboardScreen
from crunch_tui.screens.starting import StartingScreen
from crunch_tui.snapshots import LogLine
from tests.tui.conftest import SIZE, make_app, wait_for
from tests.tui.fake import FakeControlPlane
from tests.tui.screen_text import screen_text


class StubEngine:
    """Stands in for ``LocalEngine`` in pilot tests: no process, scripted state and output."""

    def __init__(self, lines: list[str], fail_with: int | None = None) -> None:
        self.url = "http://127.0.0.1:9"
        self.api_key = "k"
        self._lines = [
            LogLine(seq=i + 1, process="serve", stream="stderr", line=text, ts=datetime.now(UTC))
            for i, text in enumerate(lines)
        ]
        self.fail_with = fail_with
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def state(self) -> ChildState:
        if self.fail_with is not None:
            return ChildState("fatal", None, self.fail_with)
        return ChildState("starting", 4242, None)

    def lines(self, after: int = 0, limit: int = 500) -> list[LogLine]:
        return [line for line in self._lines if line.seq > after][-limit:]


async def test_starting_screen_then_dashboard_then_quit_stops_the_engine():
    fake = FakeControlPlane()
    fake.down = True
    engine = StubEngine(["INFO migrating the database", "orchestrator | INFO echo of a worker"])
    app = make_app(fake, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, StartingScreen))
        await wait_for(pilot, lambda: "migrating the database" in screen_text(app))
        text = screen_text(app)
        assert "starting engine" in text and "pid 4242" in text
        assert app.connection.kind == "starting"
        fake.down = False
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await wait_for(pilot, lambda: app.snapshot.loaded)
        assert app.connection.kind == "connected" and app.connection.local
        # The child's own lines join the log book; its echo of worker lines does not.
        await wait_for(pilot, lambda: "serve" in app.logbook.processes)
        serve_lines = [e.line.line for e in app.logbook if e.line.process == "serve"]
        assert serve_lines == ["INFO migrating the database"]
        await pilot.press("q")
        await wait_for(pilot, lambda: engine.stopped)
    assert app.return_value == 0


async def test_failing_start_explains_itself():
    fake = FakeControlPlane()
    fake.down = True
    engine = StubEngine(["Traceback (most recent call last):", "ValueError: [bad] CRUNCH_PACK"], 2)
    app = make_app(fake, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connection.kind == "failed")
        text = screen_text(app)
        assert "the engine failed to start: crunch serve exited (code 2)" in text
        assert "ValueError: [bad] CRUNCH_PACK" in text
        assert "last exit code 2" in text
        await pilot.press("q")
        await wait_for(pilot, lambda: engine.stopped)


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


@pytest.mark.slow
async def test_real_supervisor_reports_a_failing_child():
    engine = LocalEngine(
        argv=_script("""
            import sys
            print("config error: CRUNCH_PACK=nope is not a pack", file=sys.stderr, flush=True)
            sys.exit(2)
        """)
    )
    fake = FakeControlPlane()
    fake.down = True
    app = make_app(fake, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connection.kind == "failed", within=30)
        text = screen_text(app)
        assert "config error: CRUNCH_PACK=nope is not a pack" in text
        assert "exited (code 2)" in text
        await pilot.press("q")
        await pilot.pause(0.5)
    assert engine.pids() == []


@pytest.mark.slow
async def test_real_supervisor_stop_leaves_no_process():
    engine = LocalEngine(
        argv=_script("""
            import subprocess, sys, time
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             start_new_session=True)
            print("up", flush=True)
            time.sleep(600)
        """)
    )
    await engine.start()
    try:
        for _ in range(100):
            if len(engine.pids()) == 2:
                break
            await __import__("asyncio").sleep(0.05)
        tree = engine.pids()
        assert len(tree) == 2  # the child and a grandchild in its own session
        assert engine.state().state in {"starting", "running"}
    finally:
        await engine.stop()
    alive = [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == []
    assert engine.lines() == []  # stopped: nothing left to read


def test_local_engine_defaults():
    engine = LocalEngine(port=free_port())
    argv = engine.default_argv()
    assert argv[1:4] == ["-m", "crunch_engine.cli", "serve"]
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", str(engine.port)]
    assert engine.url == f"http://127.0.0.1:{engine.port}"
    assert len(engine.api_key) >= 32 and engine.api_key != LocalEngine().api_key
