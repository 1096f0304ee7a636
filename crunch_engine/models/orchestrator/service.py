"""The local orchestrator: models.yml in, one supervised server per model, announcements out.

It reconciles the watched configuration with the running processes (start what should
run, stop what should not, restart what changed), forwards every wire-visible change to
the WebSocket publisher, acts on coordinators' failure reports, and rewrites state.json.
Everything it uses is passed in, so tests run it in-process on temporary folders.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from crunch_engine.errors import ConfigError, CrunchError
from crunch_engine.models.contracts import FailureCode, ModelEndpoint
from crunch_engine.models.orchestrator.config import DesiredState, ModelSpec
from crunch_engine.models.orchestrator.environment import ResourceLimits
from crunch_engine.models.orchestrator.launcher import SERVER_MODULE, Launcher
from crunch_engine.models.orchestrator.pids_cgroup import PidsCgroups
from crunch_engine.models.orchestrator.process import ModelProcess, Phase, RestartPolicy
from crunch_engine.models.orchestrator.publisher import FailureReport, ModelPublisher
from crunch_engine.models.orchestrator.status import StateFile, state_path
from crunch_engine.models.orchestrator.venvs import VenvBuilder
from crunch_engine.models.orchestrator.watcher import FleetSnapshot, ModelsWatcher
from crunch_engine.settings import Settings
from crunch_engine.workers.runtime import wait_or_stop

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0


class Orchestrator:
    """Owns the model processes of one crunch and the WebSocket that announces them."""

    def __init__(
        self,
        *,
        crunch_id: str,
        data_dir: Path,
        watcher: ModelsWatcher,
        launcher: Launcher,
        policy: RestartPolicy,
        venvs: VenvBuilder | None,
        host: str,
        port: int,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.crunch_id = crunch_id
        self.data_dir = data_dir
        self.watcher = watcher
        self.launcher = launcher
        self.policy = policy
        self.venvs = venvs
        self.poll_seconds = poll_seconds
        self.publisher = ModelPublisher(
            host, port, crunch_id, running=self.running_endpoints, on_failure=self.handle_failure
        )
        self.state = StateFile(
            state_path(data_dir),
            crunch_id=crunch_id,
            websocket_url=f"ws://{host}:{port}/{crunch_id}",
        )
        self.models: dict[str, ModelProcess] = {}
        self._code_hashes: dict[str, str] = {}
        self._config_hash = ""
        self._disabled: dict[str, tuple[str, str]] = {}
        """model id -> (config hash, code hash) when a coordinator reported it broken."""
        self._running = False
        self._reported_error: str | None = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def is_running(self) -> bool:
        """Between a successful ``start`` and ``close``."""
        return self._running

    async def start(self) -> None:
        (self.data_dir / "models").mkdir(parents=True, exist_ok=True)
        try:
            await self.publisher.start()
        except OSError as exc:
            raise CrunchError(
                f"cannot listen on {self.publisher.host}:{self.publisher.requested_port}: {exc}"
            ) from None
        self.state.websocket_url = (
            f"ws://{self.publisher.host}:{self.publisher.port}/{self.crunch_id}"
        )
        self._running = True
        self.write_state()
        await self.poll()

    async def poll(self) -> None:
        """Look at the models directory once and act on what changed."""
        snapshot = await asyncio.to_thread(self.watcher.poll)
        if snapshot is not None:
            await self._reconcile(snapshot)
        if self.watcher.last_error != self._reported_error:
            self._reported_error = self.watcher.last_error
            self.write_state()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; every model is stopped on the way out."""
        try:
            await self.start()
            while not await wait_or_stop(stop, self.poll_seconds):
                await self.poll()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop every model (process groups included), then the WebSocket."""
        await asyncio.gather(*(model.stop() for model in self.models.values()))
        self._running = False
        self.write_state()
        await self.publisher.close()

    # ----------------------------------------------------------------- reconciliation
    def _new_process(self, spec: ModelSpec) -> ModelProcess:
        return ModelProcess(
            spec,
            launcher=self.launcher,
            policy=self.policy,
            workdir_root=self.data_dir / "models",
            venvs=self.venvs,
            on_change=self._on_change,
        )

    async def _reconcile(self, snapshot: FleetSnapshot) -> None:
        wanted = {spec.id: spec for spec in snapshot.config.models}
        config_changed = snapshot.config_hash != self._config_hash
        self._config_hash = snapshot.config_hash
        removed = [
            self.models.pop(model_id) for model_id in list(self.models) if model_id not in wanted
        ]
        for model in removed:
            self._disabled.pop(model.spec.id, None)
            self._code_hashes.pop(model.spec.id, None)
            logger.info("model=%s removed from models.yml: stopping", model.spec.id)
        await asyncio.gather(*(model.stop() for model in removed))
        await asyncio.gather(
            *(self._apply(spec, snapshot, config_changed) for spec in wanted.values())
        )
        self.write_state()

    async def _apply(self, spec: ModelSpec, snapshot: FleetSnapshot, config_changed: bool) -> None:
        code_hash = snapshot.code_hashes.get(spec.id, "")
        model = self.models.get(spec.id)
        fresh = model is None
        if model is None:
            model = self.models[spec.id] = self._new_process(spec)
        runtime_changed = not fresh and (
            model.spec.submission_dir != spec.submission_dir
            or self._code_hashes.get(spec.id) != code_hash
        )
        self._code_hashes[spec.id] = code_hash
        if spec.id in self._disabled and self._disabled[spec.id] != (
            snapshot.config_hash,
            code_hash,
        ):
            logger.info("model=%s re-enabled: its configuration changed", spec.id)
            del self._disabled[spec.id]
        if runtime_changed and model.active:
            logger.info("model=%s submission changed: restarting", spec.id)
            await model.stop()
        if model.spec.identity != spec.identity:
            model.update_identity(spec)
        model.spec = spec
        if spec.desired_state is DesiredState.STOPPED or spec.id in self._disabled:
            if model.active or model.phase is not Phase.STOPPED:
                final = Phase.DISABLED if spec.id in self._disabled else Phase.STOPPED
                await model.stop(final)
            return
        retry = fresh or runtime_changed or config_changed
        if not model.active and (model.phase is not Phase.FAILED or retry):
            logger.info("model=%s starting", spec.id)
            model.start()

    # ----------------------------------------------------------------- events
    def running_endpoints(self) -> list[ModelEndpoint]:
        endpoints = (m.endpoint() for m in self.models.values() if m.phase is Phase.RUNNING)
        return [e for e in endpoints if e is not None]

    def _on_change(self, model: ModelProcess, announce: ModelEndpoint | None) -> None:
        if announce is not None:
            logger.info(
                "announce model=%s deployment=%s %s",
                announce.model_id, announce.deployment_id, announce.state.value,
            )  # fmt: skip
            self.publisher.publish([announce])
        self.write_state()

    async def handle_failure(self, report: FailureReport) -> None:
        """A coordinator's verdict: stop a broken model, restart a failing one."""
        logger.warning(
            "report_failure model=%s code=%s ip=%s reason=%s",
            report.model_id, report.failure_code.value, report.ip, report.failure_reason,
        )  # fmt: skip
        model = self.models.get(report.model_id)
        if model is None:
            logger.warning("report_failure for unknown model %r ignored", report.model_id)
            return
        detail = f"reported {report.failure_code.value}: {report.failure_reason}".strip()
        if report.failure_code is FailureCode.BAD_IMPLEMENTATION:
            code_hash = self._code_hashes.get(report.model_id, "")
            self._disabled[report.model_id] = (self._config_hash, code_hash)
            await model.stop(Phase.DISABLED, reason=detail)
        elif (
            report.failure_code in (FailureCode.MULTIPLE_FAILED, FailureCode.MULTIPLE_TIMEOUT)
            and model.phase is Phase.RUNNING
        ):
            model.last_error = detail
            model.restart(detail)
        # CONNECTION_FAILED: our own health check decides whether the server is alive.

    def write_state(self) -> None:
        try:
            self.state.write(
                [model.status() for model in self.models.values()],
                running=self._running,
                models_file=str(self.watcher.path),
                config_error=self.watcher.last_error,
            )
        except OSError as exc:
            logger.error("cannot write %s: %s", self.state.path, exc)


def default_server_entry() -> tuple[str, ...]:
    return ("-m", SERVER_MODULE)


def build_orchestrator(
    settings: Settings,
    *,
    server_entry: tuple[str, ...] | None = None,
    policy: RestartPolicy | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> Orchestrator:
    """The orchestrator as configured by the settings (tests override timings)."""
    models_dir = settings.models_dir.expanduser().resolve()
    if not models_dir.is_dir():
        raise ConfigError(f"CRUNCH_MODELS_DIR: {models_dir} is not a folder")
    data_dir = settings.ensure_data_dir()
    launcher = Launcher(
        limits=ResourceLimits(
            memory_mb=settings.model_memory_limit_mb,
            open_files=settings.model_max_open_files,
            processes=settings.model_max_processes,
        ),
        hard_limit_seconds=settings.model_hard_limit_seconds,
        log_level=settings.log_level,
        server_entry=server_entry or default_server_entry(),
        pids_cgroups=PidsCgroups.detect() if settings.model_max_processes > 0 else None,
    )
    return Orchestrator(
        crunch_id=settings.crunch_id,
        data_dir=data_dir,
        watcher=ModelsWatcher(models_dir, settings.crunch_id),
        launcher=launcher,
        policy=policy or RestartPolicy(unhealthy_limit_seconds=settings.model_hard_limit_seconds),
        venvs=VenvBuilder(data_dir / "venvs"),
        host=settings.orchestrator_host,
        port=settings.orchestrator_port,
        poll_seconds=poll_seconds,
    )
