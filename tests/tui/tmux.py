"""Drive a real terminal program in tmux (a private server per test: its own socket and
the environment we give it, whatever other tmux sessions run on the machine)."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil


class Tmux:
    def __init__(self, env: Mapping[str, str], width: int = 160, height: int = 50) -> None:
        self.socket = f"crunch-tui-{uuid.uuid4().hex[:10]}"
        self.session = "tui"
        self.env = dict(env)
        self.size = (width, height)

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
        )

    def start(self, argv: Sequence[str]) -> None:
        width, height = self.size
        command = "exec " + shlex.join(argv)
        self._tmux(
            "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), command
        )

    def capture(self) -> str:
        result = self._tmux("capture-pane", "-p", "-t", self.session, check=False)
        return result.stdout

    def press(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.session, *keys)

    def pane_pid(self) -> int | None:
        result = self._tmux("list-panes", "-t", self.session, "-F", "#{pane_pid}", check=False)
        text = result.stdout.strip()
        return int(text) if text.isdigit() else None

    def alive(self) -> bool:
        return self._tmux("has-session", "-t", self.session, check=False).returncode == 0

    def wait_for(self, predicate: Callable[[str], bool], within: float, what: str) -> str:
        deadline = time.monotonic() + within
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if predicate(screen):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"not on screen within {within:.0f} s: {what}\n{screen}")

    def kill(self) -> None:
        self._tmux("kill-server", check=False)
        base = Path(self.env.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (base / self.socket).unlink(missing_ok=True)  # tmux may leave its socket behind


def live(pids: Sequence[int]) -> list[int]:
    """The pids still running (a zombie is dead: only its parent has not reaped it yet)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.Error:
            continue
    return out


def wait_gone(pids: Sequence[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    while (left := live(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_all(pids: Sequence[int]) -> None:
    """Cleanup after a failed test: only the pids this test recorded."""
    for pid in live(pids):
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            continue
