"""One supervised process: spawning it, its explicit state machine, stopping it.

A ``ManagedProcess`` owns at most one child at a time. Every state change goes
through ``_set_state``, which checks it against ``TRANSITIONS``, logs it and publishes
it, so the table below is the whole lifecycle:

- start: ``starting``; after ``stable_after_seconds`` up, ``running`` (failures reset).
- an exit while ``starting`` is a quick failure: ``backoff`` (delay growing with each
  one), or ``fatal`` after ``max_quick_failures`` in a row, until started by hand.
- an exit while ``running``: ``backoff`` with the initial delay (workers run forever,
  so even code 0 is restarted), or ``exited`` when the restart policy says so.
- stop: ``stopping`` (SIGTERM to the group, grace, SIGKILL), then ``stopped``.

Public actions (start, stop, restart) and the automatic restart after a backoff take
one lock, so they never interleave; the watcher task only observes the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from functools import partial
from itertools import islice

from crunch_engine.supervisor.backoff import Backoff
from crunch_engine.supervisor.child import Child, spawn_confined
from crunch_engine.supervisor.groups import signal_group, wait_group_gone
from crunch_engine.supervisor.lines import read_lines
from crunch_engine.supervisor.models import (
    LogLine,
    ProcessInfo,
    ProcessSpec,
    ProcessState,
    Stream,
    SupervisorEvent,
)
from crunch_engine.timeutil import utc_now

logger = logging.getLogger(__name__)

S = ProcessState
TRANSITIONS: dict[ProcessState, frozenset[ProcessState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.EXITED, S.FATAL, S.STOPPING}),
    S.RUNNING: frozenset({S.BACKOFF, S.EXITED, S.STOPPING}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED}),
    S.EXITED: frozenset({S.STARTING}),
    S.FATAL: frozenset({S.STARTING}),
    S.STOPPING: frozenset({S.STOPPED}),
}
ALIVE = frozenset({S.STARTING, S.RUNNING})

READER_DRAIN_SECONDS = 2.0
"""After an exit, how long the pipe readers may take to hit EOF before being cancelled."""
DEFAULT_LOG_LINES = 2000


class ManagedProcess:
    """One spec, its current child (if any), its state, counters and log buffers."""

    def __init__(
        self,
        spec: ProcessSpec,
        *,
        publish: Callable[[SupervisorEvent], None],
        next_seq: Callable[[], int],
        log_lines: int = DEFAULT_LOG_LINES,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.lines: deque[LogLine] = deque(maxlen=log_lines)
        """The ring buffer of this process's output, oldest first."""
        self._publish = publish
        self._next_seq = next_seq
        self._backoff = Backoff.from_spec(spec)
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self._state = S.STOPPED
        self._proc: Child | None = None
        self._pid: int | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._backoff_task: asyncio.Task[None] | None = None
        self._spawning: asyncio.Task[None] | None = None
        self._spawns = 0
        self._restarts = 0
        self._quick_failures = 0
        self._last_exit_code: int | None = None
        self._started_at: datetime | None = None
        self._started_mono: float | None = None
        self._stderr_tail: deque[str] = deque(maxlen=spec.stderr_tail_lines)
        self._cpu_percent: float | None = None
        self._rss_bytes: int | None = None
        self._heartbeat_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> ProcessState:
        return self._state

    @property
    def pid(self) -> int | None:
        """The pid of the live child, None when there is none."""
        return self._pid

    def info(self) -> ProcessInfo:
        """A snapshot; cheap (no system calls), so any read path may call it."""
        uptime = None
        if self._pid is not None and self._started_mono is not None:
            uptime = round(time.monotonic() - self._started_mono, 3)
        return ProcessInfo(
            name=self.name,
            state=self._state,
            pid=self._pid,
            started_at=self._started_at,
            uptime_seconds=uptime,
            restarts=self._restarts,
            last_exit_code=self._last_exit_code,
            last_stderr=list(self._stderr_tail),
            cpu_percent=self._cpu_percent,
            rss_bytes=self._rss_bytes,
            heartbeat_at=self._heartbeat_at,
            argv=list(self.spec.argv),
        )

    def tail(self, limit: int) -> list[LogLine]:
        """The last ``limit`` log lines, oldest first."""
        if limit <= 0:
            return []
        return list(islice(self.lines, max(0, len(self.lines) - limit), None))

    def record_sample(self, pid: int, cpu_percent: float | None, rss_bytes: int) -> None:
        """The sampler saw ``pid`` alive; ignored when it is no longer our child."""
        if pid != self._pid:
            return
        if cpu_percent is not None:
            self._cpu_percent = cpu_percent
        self._rss_bytes = rss_bytes
        self._heartbeat_at = utc_now()

    # --- public actions -------------------------------------------------------------

    async def start(self) -> ProcessInfo:
        """Start now (also out of backoff or fatal, with the failure count cleared)."""
        async with self._exclusive():
            if self._state not in ALIVE:
                self._cancel_backoff()
                self._quick_failures = 0
                await self._spawn()
            return self.info()

    async def stop(self) -> ProcessInfo:
        """Stop and stay stopped. A process already exited or fatal keeps that state."""
        async with self._exclusive():
            await self._stop_locked()
            return self.info()

    async def restart(self) -> ProcessInfo:
        """Stop (if running), then start with the failure count cleared."""
        async with self._exclusive():
            await self._stop_locked()
            self._quick_failures = 0
            await self._spawn()
            return self.info()

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """The action lock, plus the end of a spawn whose caller was cancelled."""
        async with self._lock:
            if self._spawning is not None and not self._spawning.done():
                await asyncio.wait({self._spawning})
            yield

    def kill_now(self) -> None:
        """Last resort (a cancelled shutdown): SIGKILL the group, no waiting, no states."""
        self._cancel_backoff()
        if self._proc is not None:
            signal_group(self._proc.pid, signal.SIGKILL)

    # --- state machine --------------------------------------------------------------

    def _set_state(self, new: ProcessState, detail: str = "") -> None:
        old = self._state
        if new not in TRANSITIONS[old]:
            raise RuntimeError(f"{self.name}: invalid state transition {old} -> {new}")
        self._state = new
        level = logging.INFO
        if new is S.FATAL:
            level = logging.ERROR
        elif new is S.BACKOFF or (new is S.EXITED and self._last_exit_code not in (0, None)):
            level = logging.WARNING
        logger.log(level, "%s: %s -> %s%s", self.name, old, new, f" ({detail})" if detail else "")
        self._publish(SupervisorEvent(kind="state", process=self.name, info=self.info()))

    def _exit_detail(self, code: int | None) -> str:
        return "could not start" if code is None else f"exit code {code}"

    def _handle_exit(self, code: int | None, stable: bool) -> None:
        """Decide what follows an exit nobody asked for: exited, fatal or backoff."""
        detail = self._exit_detail(code)
        policy = self.spec.restart
        if policy == "never" or (policy == "on-failure" and code == 0):
            self._set_state(S.EXITED, detail)
            return
        attempt = 0
        if not stable:
            self._quick_failures += 1
            if self._quick_failures >= self.spec.max_quick_failures:
                self._set_state(
                    S.FATAL, f"{detail}, {self._quick_failures} quick failures in a row"
                )
                return
            attempt = self._quick_failures - 1
        delay = self._backoff.delay(attempt, self._rng)
        self._set_state(S.BACKOFF, f"{detail}, restart in {delay:.2f}s")
        self._backoff_task = asyncio.create_task(
            self._restart_after(delay), name=f"supervisor-backoff:{self.name}"
        )

    async def _restart_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._exclusive():
            if self._state is S.BACKOFF:
                await self._spawn()

    def _cancel_backoff(self) -> None:
        task = self._backoff_task
        self._backoff_task = None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    # --- spawning and watching ------------------------------------------------------

    async def _spawn(self) -> None:
        """Spawn in a task of its own, shielded: a caller cancelled mid-spawn must not
        leave a child that no watcher knows about."""
        self._spawning = asyncio.create_task(
            self._spawn_now(), name=f"supervisor-spawn:{self.name}"
        )
        await asyncio.shield(self._spawning)

    async def _spawn_now(self) -> None:
        self._spawns += 1
        if self._spawns > 1:
            self._restarts += 1
        self._started_at = utc_now()
        self._started_mono = time.monotonic()
        self._cpu_percent = None
        self._rss_bytes = None
        try:
            proc = await spawn_confined(self.spec)
        except OSError as error:
            message = f"cannot start {self.spec.argv[0]!r}: {error}"
            logger.error("%s: %s", self.name, message)
            self._stderr_tail.append(message)
            self._started_mono = None
            self._set_state(S.STARTING, "spawn failed")
            self._last_exit_code = None
            self._handle_exit(None, stable=False)
            return
        stdout, stderr = proc.process.stdout, proc.process.stderr
        assert stdout is not None and stderr is not None
        self._proc = proc
        self._pid = proc.pid
        self._heartbeat_at = self._started_at
        self._set_state(S.STARTING, f"pid {proc.pid}")
        readers = [
            asyncio.create_task(read_lines(stdout, partial(self._on_line, "stdout"))),
            asyncio.create_task(read_lines(stderr, partial(self._on_line, "stderr"))),
        ]
        self._watcher = asyncio.create_task(
            self._watch(proc, readers), name=f"supervisor-watch:{self.name}"
        )

    def _on_line(self, stream: Stream, text: str) -> None:
        line = LogLine(
            seq=self._next_seq(), process=self.name, stream=stream, ts=utc_now(), line=text
        )
        self.lines.append(line)
        if stream == "stderr":
            self._stderr_tail.append(text)
        self._heartbeat_at = line.ts
        self._publish(SupervisorEvent(kind="log", process=self.name, line=line))

    async def _watch(self, proc: Child, readers: list[asyncio.Task]) -> None:
        """Mark the start stable after a while, then wait for the exit and react to it."""
        exited = asyncio.ensure_future(proc.wait())
        try:
            done, _ = await asyncio.wait({exited}, timeout=self.spec.stable_after_seconds)
            stable = not done
            if stable and not proc.stopping and self._state is S.STARTING:
                self._quick_failures = 0
                self._set_state(S.RUNNING, f"up {self.spec.stable_after_seconds:g}s")
            code = await exited
        except asyncio.CancelledError:
            exited.cancel()
            raise
        if not proc.stopping:
            # What the crashed leader forked would run on unsupervised and keep its
            # pipes open; the group dies with it.
            signal_group(proc.pid, signal.SIGKILL)
        await self._drain(readers)
        proc.close()
        if proc.stopping:
            return  # _stop_locked records the end of this run
        self._end_run(code)
        self._handle_exit(code, stable)

    async def _drain(self, readers: list[asyncio.Task]) -> None:
        """Let the readers reach EOF (the last lines explain an exit), but not forever."""
        done, pending = await asyncio.wait(readers, timeout=READER_DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            logger.warning("%s: output pipes still open after exit; stopped reading", self.name)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                logger.error("%s: log reader failed", self.name, exc_info=task.exception())

    def _end_run(self, code: int | None) -> None:
        self._last_exit_code = code
        self._proc = None
        self._pid = None
        self._watcher = None
        self._started_mono = None
        self._cpu_percent = None
        self._rss_bytes = None

    # --- stopping -------------------------------------------------------------------

    async def _stop_locked(self) -> None:
        self._cancel_backoff()
        proc, watcher = self._proc, self._watcher
        if proc is None or watcher is None:
            if self._state is S.BACKOFF:
                self._set_state(S.STOPPED, "backoff cancelled")
            return
        proc.stopping = True
        self._set_state(S.STOPPING, f"SIGTERM to group {proc.pid}")
        try:
            code = await self._terminate(proc)
            await asyncio.wait({watcher})
        except asyncio.CancelledError:
            self.kill_now()
            self._end_run(None)
            self._set_state(S.STOPPED, "stop cancelled: SIGKILL sent")
            raise
        self._end_run(code)
        self._set_state(S.STOPPED, self._exit_detail(code))

    async def _terminate(self, proc: Child) -> int:
        """SIGTERM to the group, up to the grace period for all of it, then SIGKILL."""
        grace = self.spec.stop_grace_seconds
        deadline = time.monotonic() + grace
        signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
        except TimeoutError:
            logger.warning("%s: still running %gs after SIGTERM: SIGKILL", self.name, grace)
        else:
            await wait_group_gone(proc.pid, deadline)
        signal_group(proc.pid, signal.SIGKILL)
        return await proc.wait()
