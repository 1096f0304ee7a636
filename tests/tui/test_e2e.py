"""End to end: the real ``crunch tui`` in tmux, offline, with no configuration.

Local mode: leaderboard rows appear, the views switch with their keys, a worker restarts
with its key, and quitting leaves no process behind. Attach mode: the TUI monitors a
``crunch serve`` started here, and quitting leaves that server running.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from crunch_tui.engine import free_port
from tests.tui.tmux import Tmux, kill_all, live, wait_gone

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
LEADERBOARD_WITHIN = 120.0
ROW = re.compile(r"^\s*1\s+\S+\s+\S", re.MULTILINE)


def _has_rows(screen: str) -> bool:
    found = re.search(r"Leaderboard · \w+ · (\d+) models", screen)
    return bool(found and int(found.group(1)) > 0 and ROW.search(screen))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no CRUNCH_* from the caller, a fresh data dir, free ports."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CRUNCH_", "TMUX"))}
    clean |= {
        "CRUNCH_DATA_DIR": str(tmp_path / "data"),
        "CRUNCH_ORCHESTRATOR_PORT": str(free_port()),
        "TERM": "xterm-256color",
        "PYTHONPATH": str(REPO),
    }
    return clean


@pytest.fixture
def tmux(env: dict[str, str]) -> Iterator[Tmux]:
    terminal = Tmux(env)
    try:
        yield terminal
    finally:
        terminal.kill()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _worker_pid(processes: list[psutil.Process], module: str) -> int | None:
    for proc in processes:
        try:
            if f"crunch_engine.workers.{module}" in " ".join(proc.cmdline()):
                return proc.pid
        except psutil.Error:
            continue
    return None


def test_local_mode_end_to_end(tmux: Tmux, tmp_path: Path) -> None:
    tmux.start([str(BIN / "crunch"), "tui"])
    recorded: list[int] = []
    try:
        tmux.wait_for(lambda s: "starting" in s or "connected" in s, 15, "the first frame")
        tmux.wait_for(_has_rows, LEADERBOARD_WITHIN, "leaderboard rows")
        tui_pid = tmux.pane_pid()
        assert tui_pid is not None
        tree = _tree(tui_pid)
        recorded = [p.pid for p in tree]
        serve = [p for p in tree if "serve" in " ".join(p.cmdline())]
        assert serve, "the crunch serve child"
        old_worker = _worker_pid(tree, "market_data")
        assert old_worker is not None
        assert len(recorded) >= 6  # tui, serve and its four workers (plus model servers)

        tmux.press("m")
        tmux.wait_for(lambda s: "Models · " in s and "RUNNING" in s, 20, "the Models view")
        tmux.press("l")
        tmux.wait_for(lambda s: "all (merged)" in s, 10, "the Logs view")
        tmux.press("p")
        tmux.wait_for(
            lambda s: "uptime" in s and re.search(r"market-data\s+running", s) is not None,
            20,
            "the Processes view",
        )
        tmux.press("r")  # the cursor is on the first row: market-data

        def restarted(screen: str) -> bool:
            new = _worker_pid(_tree(tui_pid), "market_data")
            return new is not None and new != old_worker

        tmux.wait_for(restarted, 30, "market-data restarted with a new pid")
        tmux.wait_for(
            lambda s: re.search(r"market-data\s+\w+\s+\d+\s+\S+\s+1\s", s) is not None,
            15,
            "restart count 1 on screen",
        )
        recorded += [p.pid for p in _tree(tui_pid) if p.pid not in recorded]
        tmux.press("d")
        tmux.press("q")
        deadline = time.monotonic() + 30
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), "the TUI exited"
        left = wait_gone(recorded, 5)
        assert left == [], f"left behind: {[(p, psutil.Process(p).cmdline()) for p in left]}"
    finally:
        kill_all(recorded)


def test_closing_the_terminal_stops_the_engine(tmux: Tmux) -> None:
    """SIGHUP (the terminal window closed) stops the child server and its workers too."""
    tmux.start([str(BIN / "crunch"), "tui"])
    recorded: list[int] = []
    try:
        tmux.wait_for(lambda s: "connected" in s, 60, "connected to the local engine")
        tui_pid = tmux.pane_pid()
        assert tui_pid is not None
        deadline = time.monotonic() + 30
        while _worker_pid(_tree(tui_pid), "score") is None and time.monotonic() < deadline:
            time.sleep(0.2)
        recorded = [p.pid for p in _tree(tui_pid)]
        assert len(recorded) >= 6
        tmux.kill()  # the terminal goes away: SIGHUP
        left = wait_gone(recorded, 30)
        assert left == [], f"left behind: {left}"
    finally:
        kill_all(recorded)


def _wait_healthy(url: str, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url} not healthy within {within} s")


def test_attach_mode_leaves_the_server_running(tmux: Tmux, env: dict[str, str]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = env | {"CRUNCH_API_KEY": "attach-test-key"}
    server = subprocess.Popen(
        [str(BIN / "crunch"), "serve", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_healthy(url, 60)
        tmux.start([str(BIN / "crunch"), "tui", "--attach", url, "--api-key", "attach-test-key"])
        tmux.wait_for(_has_rows, LEADERBOARD_WITHIN, "leaderboard rows (attach)")
        screen = tmux.capture()
        assert "attached" in screen and url in screen
        tmux.press("p")
        tmux.wait_for(lambda s: re.search(r"score\s+running", s) is not None, 20, "processes")
        tmux.press("q")
        deadline = time.monotonic() + 10
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), "the TUI exited"
        time.sleep(1)
        assert server.poll() is None, "the server kept running"
        assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        workers = [
            p for p in _tree(server.pid)[1:] if "crunch_engine.workers" in " ".join(p.cmdline())
        ]
        assert len(live([p.pid for p in workers])) == 4
    finally:
        pids = [p.pid for p in _tree(server.pid)]
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        kill_all(wait_gone(pids, 10))
