"""One model's lifecycle: build its venv, start its server, watch it, restart it.

Phases (``state`` in state.json)::

    BUILDING -> STARTING -> RUNNING -> (exit / unhealthy / restart) -> BACKOFF -> STARTING ...
    any -> STOPPING -> STOPPED | DISABLED          a venv build failure -> FAILED

Only RUNNING is announced as RUNNING on the wire, once the health check says SERVING,
with a fresh deployment id per start. When a RUNNING deployment ends for any reason its
deployment id is announced STOPPED at once. RECOVERING is never sent: the reference
orchestrator's publisher maps every non-running state (stopping, stopped, failed) to
STOPPED and clients drop a deployment on STOPPED, which is what a crashed server needs;
the new deployment is announced RUNNING when it is healthy again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from crunch_engine.models.contracts import ModelEndpoint, WireState
from crunch_engine.models.orchestrator.config import ModelSpec
from crunch_engine.models.orchestrator.health import HealthProbe
from crunch_engine.models.orchestrator.launcher import LOG_NAME, Launcher, ServerProcess
from crunch_engine.models.orchestrator.venvs import VenvBuilder, VenvBuildError

logger = logging.getLogger(__name__)

WATCHDOG_EXIT_CODE = 86
"""The model server exits with this code when one call outlives the hard limit."""


class Phase(StrEnum):
    STOPPED = "STOPPED"
    BUILDING = "BUILDING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    FAILED = "FAILED"
    DISABLED = "DISABLED"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Timings of the lifecycle; the defaults suit production, tests shorten them."""

    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    stable_seconds: float = 60.0
    """A run at least this long resets the backoff."""
    startup_timeout_seconds: float = 60.0
    health_interval_seconds: float = 1.0
    health_timeout_seconds: float = 2.0
    unhealthy_limit_seconds: float = 30.0
    """A RUNNING model failing its health check this long is killed (settings'
    model_hard_limit_seconds): the backstop for a server whose own watchdog is stuck."""
    kill_grace_seconds: float = 5.0

    def backoff(self, failures: int) -> float:
        return min(self.max_backoff_seconds, self.initial_backoff_seconds * 2 ** (failures - 1))


def deployment_stamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment:%Y%m%d_%H%M%S}_{moment.microsecond // 1000:03d}"


OnChange = Callable[["ModelProcess", ModelEndpoint | None], None]
"""Called on every status change; the endpoint when the change is visible on the wire."""


class ModelProcess:
    """Supervises one model; the service decides *whether* it runs, this decides *how*."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        launcher: Launcher,
        policy: RestartPolicy,
        workdir_root: Path,
        venvs: VenvBuilder | None,
        on_change: OnChange,
        ip: str = "127.0.0.1",
    ) -> None:
        self.spec = spec
        self.launcher = launcher
        self.policy = policy
        self.workdir = workdir_root / spec.id
        self.venvs = venvs
        self.on_change = on_change
        self.ip = ip
        self.phase = Phase.STOPPED
        self.deployment_id: str | None = None
        self.pid: int | None = None
        self.port: int | None = None
        self.python: str | None = None
        self.restarts = 0
        self.last_exit_code: int | None = None
        self.last_error: str | None = None
        self.started_at: datetime | None = None
        self.next_start_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._restart_reason: str | None = None
        self._last_moment: datetime | None = None

    # ----------------------------------------------------------------- public surface
    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def log_path(self) -> Path:
        return self.workdir / LOG_NAME

    def endpoint(self, state: WireState = WireState.RUNNING) -> ModelEndpoint | None:
        if self.deployment_id is None or self.port is None:
            return None
        return ModelEndpoint(
            model_id=self.spec.id,
            deployment_id=self.deployment_id,
            identity=self.spec.identity,
            state=state,
            ip=self.ip,
            port=self.port,
        )

    def start(self) -> None:
        """Begin supervising (no-op when already supervising)."""
        if self.active:
            return
        self._stopping = False
        self._restart_reason = None
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name=f"model-{self.spec.id}")

    async def stop(self, final: Phase = Phase.STOPPED, reason: str | None = None) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and supervise no more."""
        task = self._task
        if task is not None and not task.done():
            self._stopping = True
            self._wake.set()
            if self.phase is Phase.BUILDING:
                task.cancel()  # pip is killed by the builder
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise  # our caller was cancelled, not the supervisor
        if reason:
            self.last_error = reason
        self.next_start_at = None
        self._set(final)

    def restart(self, reason: str) -> None:
        """End the current deployment now and start a new one without backoff."""
        if not self.active or self._stopping:
            return
        self._restart_reason = reason
        self._wake.set()

    def update_identity(self, spec: ModelSpec) -> None:
        """Name or cruncher changed, code did not: re-announce, keep the deployment."""
        self.spec = spec
        announce = self.endpoint() if self.phase is Phase.RUNNING else None
        self.on_change(self, announce)

    def status(self) -> dict[str, Any]:
        return {
            "id": self.spec.id,
            "name": self.spec.name,
            "cruncher": {"id": self.spec.cruncher_id, "name": self.spec.cruncher_name},
            "submission": str(self.spec.submission_dir),
            "desired_state": self.spec.desired_state.value,
            "state": self.phase.value,
            "wire_state": (
                WireState.RUNNING if self.phase is Phase.RUNNING else WireState.STOPPED
            ).value,
            "deployment_id": self.deployment_id,
            "pid": self.pid,
            "port": self.port,
            "python": self.python,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "last_error": self.last_error,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "next_start_at": self.next_start_at.isoformat() if self.next_start_at else None,
            "log": str(self.log_path),
        }

    # ----------------------------------------------------------------- internals
    def _set(self, phase: Phase, announce: ModelEndpoint | None = None) -> None:
        self.phase = phase
        self.on_change(self, announce)

    def _new_deployment_id(self) -> str:
        moment = datetime.now(UTC)
        if self._last_moment is not None and moment <= self._last_moment:
            moment = self._last_moment + timedelta(milliseconds=1)  # unique per start
        self._last_moment = moment
        return f"{self.spec.id}_{deployment_stamp(moment)}"

    async def _prepare(self) -> str | None:
        """The interpreter to run: the engine's own, or a venv for requirements.txt."""
        requirements = self.spec.requirements
        if requirements is None or self.venvs is None:
            return None
        self._set(Phase.BUILDING)
        self.workdir.mkdir(parents=True, exist_ok=True)
        return str(await self.venvs.ensure(requirements, log=self.log_path))

    async def _supervise(self) -> None:
        try:
            self.python = await self._prepare()
        except VenvBuildError as exc:
            self.last_error = f"venv build failed: {exc}"
            logger.error("model=%s %s", self.spec.id, self.last_error)
            self._set(Phase.FAILED)
            return
        failures = 0
        try:
            while not self._stopping:
                began = time.monotonic()
                await self._run_once()
                if self._stopping:
                    break
                if self._restart_reason is not None:
                    delay = 0.0
                else:
                    failures = (
                        1
                        if time.monotonic() - began >= self.policy.stable_seconds
                        else failures + 1
                    )
                    delay = self.policy.backoff(failures)
                self.restarts += 1
                self.next_start_at = datetime.now(UTC) + timedelta(seconds=delay)
                self._set(Phase.BACKOFF)
                logger.info("model=%s restart %d in %.1fs", self.spec.id, self.restarts, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self.next_start_at = None
        except Exception as exc:  # a bug here must not leave the model silently dead
            logger.exception("model=%s supervisor failed", self.spec.id)
            self.last_error = f"orchestrator error: {exc!r}"
            self._set(Phase.FAILED)

    async def _run_once(self) -> None:
        self._wake.clear()
        self._restart_reason = None
        self.deployment_id = self._new_deployment_id()
        self._set(Phase.STARTING)
        server = await self.launcher.spawn(
            python=self.python,
            code_dir=self.spec.submission_dir,
            workdir=self.workdir,
            note=f"deployment {self.deployment_id}",
        )
        self.pid, self.port = server.pid, server.port
        self.started_at = datetime.now(UTC)
        self._set(Phase.STARTING)
        probe = HealthProbe(f"{self.launcher.host}:{server.port}")
        exited = asyncio.create_task(server.wait())
        woken = asyncio.create_task(self._wake.wait())
        was_running = False
        reason = "stopped"
        try:
            reason = await self._until_ready(probe, exited, woken)
            if reason is None:
                was_running = True
                logger.info(
                    "model=%s deployment=%s RUNNING port=%d pid=%d",
                    self.spec.id, self.deployment_id, server.port, server.pid,
                )  # fmt: skip
                self._set(Phase.RUNNING, self.endpoint())
                reason = await self._watch(probe, exited, woken)
        finally:
            woken.cancel()
            await self._finish(server, exited, probe, reason or "stopped", was_running)

    def _interrupted(self) -> str:
        if self._stopping:
            return "stopped"
        return f"restart requested: {self._restart_reason}"

    @staticmethod
    def _exit_reason(code: int) -> str:
        if code == WATCHDOG_EXIT_CODE:
            return f"watchdog: a call ran longer than the hard limit (exit {code})"
        return f"exited with code {code}"

    async def _until_ready(
        self, probe: HealthProbe, exited: asyncio.Task[int], woken: asyncio.Task[Any]
    ) -> str | None:
        """None once SERVING; otherwise why the start failed."""
        deadline = time.monotonic() + self.policy.startup_timeout_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return (
                    f"not healthy within {self.policy.startup_timeout_seconds:g}s "
                    f"({probe.last_error})"
                )
            check = asyncio.create_task(probe.check(min(1.0, remaining)))
            await asyncio.wait({check, exited, woken}, return_when=asyncio.FIRST_COMPLETED)
            if check.done() and check.result():
                return None
            check.cancel()
            if exited.done():
                return f"{self._exit_reason(exited.result())} during startup"
            if woken.done():
                return self._interrupted()
            await asyncio.wait({exited, woken}, timeout=0.05)

    async def _watch(
        self, probe: HealthProbe, exited: asyncio.Task[int], woken: asyncio.Task[Any]
    ) -> str:
        """Until the server exits, is interrupted, or stays unhealthy past the limit."""
        policy = self.policy
        healthy_at = time.monotonic()
        while True:
            await asyncio.wait({exited, woken}, timeout=policy.health_interval_seconds)
            if exited.done():
                return self._exit_reason(exited.result())
            if woken.done():
                return self._interrupted()
            timeout = min(policy.health_timeout_seconds, policy.unhealthy_limit_seconds)
            check = asyncio.create_task(probe.check(timeout))
            await asyncio.wait({check, exited, woken}, return_when=asyncio.FIRST_COMPLETED)
            if not check.done():
                check.cancel()
                continue
            if check.result():
                healthy_at = time.monotonic()
                continue
            silent = time.monotonic() - healthy_at
            if silent > policy.unhealthy_limit_seconds:
                return f"unhealthy for {silent:.1f}s ({probe.last_error}): killed"

    async def _finish(
        self,
        server: ServerProcess,
        exited: asyncio.Task[int],
        probe: HealthProbe,
        reason: str,
        was_running: bool,
    ) -> None:
        """Make sure the process group is gone, then record and announce the end."""
        if was_running:  # announce first: clients must stop calling a dying deployment
            self._set(Phase.STOPPING, self.endpoint(WireState.STOPPED))
        else:
            self._set(Phase.STOPPING)
        await probe.close()  # before the server goes away: no GOAWAY noise in our log
        code = await server.terminate(self.policy.kill_grace_seconds)
        if not exited.done():
            exited.cancel()
        server.log.note(f"deployment {self.deployment_id} ended: {reason} (exit code {code})")
        tail = list(server.log.tail)
        server.close()
        self.last_exit_code = code
        self.pid = None
        if reason != "stopped":
            detail = "\n".join(line for line in tail[-5:] if not line.startswith("[orchestrator]"))
            self.last_error = f"{reason}\n{detail}".strip()
            logger.warning(
                "model=%s deployment=%s ended: %s", self.spec.id, self.deployment_id, reason
            )
