"""Starting one model server process, capturing its output, and killing its whole group.

Each server runs in its own session (process group), so stopping it also stops whatever
the participant's code spawned. Its stdout/stderr go through a pipe into a size-capped,
rotated log file in the model's working directory; the last lines are kept in memory to
explain a crash in state.json.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crunch_engine.models.orchestrator.environment import (
    ResourceLimits,
    confined_argv,
    scrubbed_environment,
)
from crunch_engine.models.orchestrator.pids_cgroup import PidsCgroups

logger = logging.getLogger(__name__)

SERVER_MODULE = "crunch_engine.models.server"
LOG_NAME = "model.log"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 2
TAIL_LINES = 20


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just considered free (the server may still lose a race: it then
    exits and is restarted on another port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RotatingLog:
    """Appends bytes to a file, rotating it to ``.1``, ``.2``... past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._handle = path.open("ab")
        self._size = path.stat().st_size

    def write(self, data: bytes) -> None:
        if self._size + len(data) > self.max_bytes and self._size > 0:
            self._rotate()
        self._handle.write(data)
        self._handle.flush()
        self._size += len(data)
        for line in data.decode("utf-8", "replace").splitlines():
            if line.strip():
                self.tail.append(line[:500])

    def note(self, text: str) -> None:
        """A line from the orchestrator itself (start, exit), marked as such."""
        self.write(f"[orchestrator] {text}\n".encode())

    def _rotate(self) -> None:
        self._handle.close()
        for index in range(self.backups, 0, -1):
            source = self.path.with_name(
                f"{self.path.name}.{index - 1}" if index > 1 else self.path.name
            )
            if source.exists():
                os.replace(source, self.path.with_name(f"{self.path.name}.{index}"))
        self._handle = self.path.open("ab")
        self._size = 0

    def close(self) -> None:
        self._handle.close()


@dataclass(slots=True)
class ServerProcess:
    """One running model server."""

    process: asyncio.subprocess.Process
    port: int
    log: RotatingLog
    pump: asyncio.Task[None] = field(repr=False)
    cgroup: tuple[PidsCgroups, str] | None = None
    """The model's pids cgroup, removed (with anything left in it) on terminate."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait(self) -> int:
        code = await self.process.wait()
        await asyncio.wait({self.pump}, timeout=2.0)  # the last output, without raising
        return code

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def terminate(self, grace: float) -> int:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; always reap the leader and
        sweep the group (children the model left behind)."""
        if self.process.returncode is None:
            self.signal_group(signal.SIGTERM)
            self.signal_group(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                logger.warning("pid %d ignored SIGTERM for %.1fs: SIGKILL", self.pid, grace)
                self.signal_group(signal.SIGKILL)
        code = await self.wait()
        self.signal_group(signal.SIGKILL)
        if self.cgroup is not None:  # also catches processes that left the group
            cgroups, name = self.cgroup
            await asyncio.to_thread(cgroups.remove, name)
        return code

    def close(self) -> None:
        self.pump.cancel()
        self.log.close()


async def _pump(stream: asyncio.StreamReader, log: RotatingLog) -> None:
    while chunk := await stream.read(65536):
        log.write(chunk)


def _open_log(workdir: Path, max_bytes: int) -> RotatingLog:
    workdir.mkdir(parents=True, exist_ok=True)
    return RotatingLog(workdir / LOG_NAME, max_bytes)


@dataclass(frozen=True, slots=True)
class Launcher:
    """How model servers are started: interpreter-independent parts of the command line,
    limits and timeouts. Tests swap ``server_entry`` for a stand-in script."""

    limits: ResourceLimits = field(default_factory=ResourceLimits)
    hard_limit_seconds: float = 30.0
    log_level: str = "INFO"
    server_entry: Sequence[str] = ("-m", SERVER_MODULE)
    host: str = "127.0.0.1"
    log_max_bytes: int = LOG_MAX_BYTES
    pids_cgroups: PidsCgroups | None = None
    """Per-model pids cgroups (a hard process cap even for root), when available."""

    def argv(self, python: str, port: int, code_dir: Path) -> list[str]:
        return [
            python,
            *self.server_entry,
            "--address",
            f"{self.host}:{port}",
            "--code-dir",
            str(code_dir),
            "--hard-limit-seconds",
            f"{self.hard_limit_seconds:g}",
            "--log-level",
            self.log_level,
        ]

    async def spawn(
        self, *, python: str | None, code_dir: Path, workdir: Path, note: str
    ) -> ServerProcess:
        """Start a server on a fresh port in ``workdir`` with the scrubbed environment."""
        log = _open_log(workdir, self.log_max_bytes)
        port = free_port(self.host)
        argv = self.argv(python or sys.executable, port, code_dir)
        log.note(f"{note}: {' '.join(argv)}")
        cgroup = None
        if self.pids_cgroups is not None and self.limits.processes > 0:
            cgroup = (self.pids_cgroups, f"{workdir.name}-{port}")
        try:
            process = await asyncio.create_subprocess_exec(
                *confined_argv(
                    self.limits,
                    argv,
                    pids_cgroup=cgroup[0].path_for(cgroup[1]) if cgroup else None,
                ),
                cwd=workdir,
                env=scrubbed_environment(workdir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            log.close()
            raise
        assert process.stdout is not None
        pump = asyncio.create_task(_pump(process.stdout, log), name=f"log-{process.pid}")
        return ServerProcess(process=process, port=port, log=log, pump=pump, cgroup=cgroup)
