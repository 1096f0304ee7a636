"""Local mode: one ``crunch serve`` child started through the engine's supervisor.

The TUI never supervises workers itself: it starts the server (which supervises the
workers and serves the API and the web UI) on a free loopback port with a random API
key, then talks to it over HTTP like attach mode does. Stopping the child stops every
worker with it, so quitting leaves no orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from crunch_tui.snapshots import LogLine

SERVE_NAME = "serve"
STOP_GRACE_SECONDS = 20.0
"""The server stops its own workers on SIGTERM; give it time before SIGKILL."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def preferred_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` when nobody listens there (the port users expect), else a free one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, preferred))
        except OSError:
            return free_port(host)
    return preferred


@dataclass(frozen=True, slots=True)
class ChildState:
    """What the starting screen shows about the child."""

    state: str
    pid: int | None
    exit_code: int | None

    @property
    def gone(self) -> bool:
        """The child exited and the supervisor will not bring it back by itself."""
        return self.state in {"fatal", "stopped"}


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


class LocalEngine:
    """Starts and stops ``crunch serve`` through ``crunch_engine.supervisor``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        supervisor_factory: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        self.host = host
        # The web UI where people expect it (CRUNCH_API_PORT, default 8000) unless taken.
        self.port = port or preferred_port(int(os.environ.get("CRUNCH_API_PORT", "8000")), host)
        self.api_key = secrets.token_urlsafe(24)
        self._argv = list(argv) if argv is not None else self.default_argv()
        self._env = dict(env or {})
        if (
            "CRUNCH_ORCHESTRATOR_PORT" not in os.environ
            and "CRUNCH_ORCHESTRATOR_PORT" not in self._env
        ):
            # A second engine on this machine must not collide on the default 9091.
            self._env["CRUNCH_ORCHESTRATOR_PORT"] = str(preferred_port(9091, host))
        self._factory = supervisor_factory
        self._supervisor: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def default_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "crunch_engine.cli",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    async def _make_supervisor(self) -> Any:
        # Imported in a thread: it pulls in half the engine (~0.5 s), which would
        # otherwise hold up the first frames of the UI.
        module = await asyncio.to_thread(importlib.import_module, "crunch_engine.supervisor")
        ProcessSpec, Supervisor = module.ProcessSpec, module.Supervisor
        extra_env = {"CRUNCH_API_KEY": self.api_key, "PYTHONUNBUFFERED": "1", **self._env}
        spec = ProcessSpec(
            name=SERVE_NAME,
            argv=self._argv,
            extra_env=extra_env,
            stop_grace_seconds=STOP_GRACE_SECONDS,
            max_quick_failures=3,
            backoff_max_seconds=5.0,
        )
        return Supervisor([spec])

    async def start(self) -> None:
        if self._supervisor is not None:
            return
        if self._factory is not None:
            self._supervisor = self._factory(self._argv)
        else:
            self._supervisor = await self._make_supervisor()
        await self._supervisor.start()

    async def stop(self) -> None:
        """Stop the child: the supervisor sends SIGTERM to its group (the server stops its
        workers), then SIGKILL after the grace period. Any descendant still alive after
        that (one that started its own session) is killed too: no orphans."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return
        tree = self._tree(supervisor)
        try:
            await supervisor.stop()
        finally:
            await asyncio.to_thread(_reap, tree, 3.0)

    def kill_leftovers(self) -> None:
        """Last resort once the event loop is gone (the app crashed): kill the whole tree."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            _reap(self._tree(supervisor), 5.0)

    def pids(self) -> list[int]:
        """The child and its descendants now (for tests and the benchmark)."""
        return [p.pid for p in self._tree(self._supervisor)] if self._supervisor else []

    def _tree(self, supervisor: Any) -> list[psutil.Process]:
        pid = self.state(supervisor).pid
        if not pid:
            return []
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def state(self, supervisor: Any = None) -> ChildState:
        supervisor = supervisor or self._supervisor
        if supervisor is None:
            return ChildState("stopped", None, None)
        for proc in supervisor.processes():
            if _field(proc, "name") == SERVE_NAME:
                state = _field(proc, "state", "starting")
                state = getattr(state, "value", state)
                return ChildState(str(state), _field(proc, "pid"), _field(proc, "last_exit_code"))
        return ChildState("starting", None, None)

    def lines(self, after: int = 0, limit: int = 500) -> list[LogLine]:
        """The child's output with ``seq`` above ``after`` (oldest first, at most
        ``limit``), to explain a failing start and to join the log book as ``serve``."""
        if self._supervisor is None:
            return []
        fresh = []
        for item in reversed(self._supervisor.logs(limit=limit)):
            if int(_field(item, "seq", 0) or 0) <= after:
                break
            fresh.append(_to_log_line(item))
        fresh.reverse()
        return fresh


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie is dead; only its parent's wait is missing)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _reap(tree: list[psutil.Process], timeout: float) -> None:
    """SIGTERM what is left of the tree, SIGKILL it after ``timeout``, wait until gone."""
    for sig_name, wait in (("terminate", timeout), ("kill", 2.0)):
        alive = [p for p in tree if _alive(p)]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                getattr(proc, sig_name)()
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [p for p in alive if _alive(p)]
        if not alive:
            return


def _to_log_line(item: Any) -> LogLine:
    if isinstance(item, LogLine):
        return item
    if isinstance(item, str):
        return LogLine(seq=0, process=SERVE_NAME, stream="stdout", line=item)
    stream = _field(item, "stream", "stdout")
    return LogLine(
        seq=int(_field(item, "seq", 0) or 0),
        process=str(_field(item, "process", SERVE_NAME) or SERVE_NAME),
        stream=str(getattr(stream, "value", stream)),
        line=str(_field(item, "line", "")),
    )
