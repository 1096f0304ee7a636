"""Shared helpers of the orchestrator tests: a running in-process orchestrator on temporary
folders, a WebSocket client that records every message, and polling helpers."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import re
import shutil
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil
import websockets
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crunch_engine.models.orchestrator.process import RestartPolicy
from crunch_engine.models.orchestrator.service import Orchestrator, build_orchestrator
from crunch_engine.models.orchestrator.status import read_state, state_path
from crunch_engine.settings import DEMO_MODELS_DIR, Settings

FIXTURES = Path(__file__).resolve().parent
STANDIN_SERVER = FIXTURES / "standin_server.py"
SILENT_SERVER = FIXTURES / "silent_server.py"
SUBMISSIONS = FIXTURES / "submissions"
CRUNCH_ID = "test-crunch"
MODEL_STATE_KEYS = {"deployment_id", "model_id", "infos", "state", "ip", "port"}
INFOS_KEYS = {
    "model_name",
    "cruncher_id",
    "cruncher_name",
    "cruncher_wallet_pubkey",
    "cruncher_hotkey",
}


def real_server_available() -> bool:
    """The model server module can be run with ``-m`` (a package with ``__main__``)."""
    try:
        return importlib.util.find_spec("crunch_engine.models.server.__main__") is not None
    except ImportError:
        return False


def server_entry() -> tuple[str, ...] | None:
    """None (the real server) once it exists, else the stand-in script.

    ``ORCHESTRATOR_TESTS_STANDIN=1`` forces the stand-in (to check both paths pass)."""
    if os.environ.get("ORCHESTRATOR_TESTS_STANDIN") == "1" or not real_server_available():
        return (str(STANDIN_SERVER),)
    return None


def deployment_pattern(model_id: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(model_id)}_\d{{8}}_\d{{6}}_\d{{3}}$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_demo(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(DEMO_MODELS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def write_models(models_dir: Path, entries: list[dict[str, Any]]) -> None:
    (models_dir / "models.yml").write_text(yaml.safe_dump({"models": entries}, sort_keys=False))


def entry(model_id: str, submission: str, state: str = "RUNNING", **extra: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": model_id.title(),
        "submission": submission,
        "desired_state": state,
        **extra,
    }


def make_settings(tmp_path: Path, models_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "models_dir": models_dir,
        "orchestrator_host": "127.0.0.1",
        "orchestrator_port": 0,
        "crunch_id": CRUNCH_ID,
        "model_hard_limit_seconds": 30.0,
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(**values)


def fast_policy(**overrides: float) -> RestartPolicy:
    values: dict[str, float] = {
        "initial_backoff_seconds": 0.2,
        "max_backoff_seconds": 1.0,
        "startup_timeout_seconds": 20.0,
        "health_interval_seconds": 0.2,
        "health_timeout_seconds": 0.5,
        "unhealthy_limit_seconds": 30.0,
        "kill_grace_seconds": 2.0,
    }
    values.update(overrides)
    return RestartPolicy(**values)


async def wait_until(
    predicate: Callable[[], object | Awaitable[object]], seconds: float, what: str
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def model_servers(models_dir: Path, root: int | None = None) -> list[psutil.Process]:
    """Live model-server processes below ``root`` (default: this test process) serving a
    submission of ``models_dir``.

    Scoped to the folder because the session's shared ``crunch serve`` fixtures (API and
    browser tests) run their own demo models below this process too."""
    parent = psutil.Process(root) if root else psutil.Process()
    found = []
    for child in parent.children(recursive=True):
        try:
            argv = child.cmdline()
            if child.status() == psutil.STATUS_ZOMBIE or "--code-dir" not in argv:
                continue
        except psutil.NoSuchProcess:
            continue
        code_dir = Path(argv[argv.index("--code-dir") + 1]).resolve()
        if code_dir.is_relative_to(models_dir.resolve()):
            found.append(child)
    return found


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def serving(port: int, seconds: float = 1.0) -> bool:
    """One health check without waiting for the channel: is it SERVING right now?"""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=seconds
            )
        except grpc.aio.AioRpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _string_field(number: int, text: str) -> bytes:
    data = text.encode()
    length = len(data)
    varint = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    return struct.pack("B", (number << 3) | 2) + bytes(varint) + data


async def call_hanging_method(port: int, base_class: str) -> None:
    """Setup the model, then start Call("hang") and give up on it after 0.5 s (the server
    keeps running the call: its watchdog must end the process)."""
    identity = lambda payload: payload  # noqa: E731 - raw protobuf bytes both ways
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        setup = channel.unary_unary(
            "/dynamic_subclass.DynamicSubclassService/Setup",
            request_serializer=identity,
            response_deserializer=identity,
        )
        await setup(_string_field(1, base_class), timeout=10)
        call = channel.unary_unary(
            "/dynamic_subclass.DynamicSubclassService/Call",
            request_serializer=identity,
            response_deserializer=identity,
        )
        try:
            await call(_string_field(1, "hang"), timeout=0.5)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
        else:
            raise AssertionError("Call(hang) returned: the hanging method did not run")


@dataclass
class WsRecorder:
    """A coordinator's view: every JSON message received, in order."""

    connection: Any
    messages: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                self.messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass

    def states(self, model_id: str | None = None) -> list[dict[str, Any]]:
        """Every ModelState received after ``init``, optionally of one model."""
        out = [s for m in self.messages[1:] if m.get("event") == "update" for s in m["data"]]
        return [s for s in out if model_id is None or s["model_id"] == model_id]

    def running(self, model_id: str) -> list[dict[str, Any]]:
        return [s for s in self.states(model_id) if s["state"] == "RUNNING"]

    async def wait_running(
        self, model_id: str, count: int = 1, seconds: float = 20
    ) -> dict[str, Any]:
        await wait_until(
            lambda: len(self.running(model_id)) >= count, seconds, f"{model_id} RUNNING #{count}"
        )
        return self.running(model_id)[count - 1]

    async def wait_state(
        self, model_id: str, deployment_id: str, state: str, seconds: float = 20
    ) -> None:
        await wait_until(
            lambda: any(
                s["deployment_id"] == deployment_id and s["state"] == state
                for s in self.states(model_id)
            ),
            seconds,
            f"{deployment_id} {state}",
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))


@asynccontextmanager
async def ws_client(port: int, path: str = f"/{CRUNCH_ID}") -> AsyncIterator[WsRecorder]:
    async with websockets.connect(f"ws://127.0.0.1:{port}{path}") as connection:
        recorder = WsRecorder(connection)
        recorder.task = asyncio.create_task(recorder._read())
        await wait_until(lambda: bool(recorder.messages), 5, "the first message")
        try:
            yield recorder
        finally:
            recorder.task.cancel()


@asynccontextmanager
async def running_orchestrator(
    settings: Settings,
    *,
    policy: RestartPolicy | None = None,
    entry_point: tuple[str, ...] | None = None,
    use_real_or_standin: bool = True,
) -> AsyncIterator[Orchestrator]:
    """An orchestrator running in this process; on exit it must leave no model process."""
    chosen = (
        entry_point
        if entry_point is not None
        else (server_entry() if use_real_or_standin else None)
    )
    orchestrator = build_orchestrator(
        settings, server_entry=chosen, policy=policy or fast_policy(), poll_seconds=0.2
    )
    stop = asyncio.Event()
    task = asyncio.create_task(orchestrator.run(stop))
    await wait_until(lambda: orchestrator.is_running or task.done(), 10, "start")
    if task.done():
        task.result()  # raises why it could not start
    try:
        yield orchestrator
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        leftovers = model_servers(settings.models_dir)
        assert not leftovers, f"model processes survived shutdown: {leftovers}"


def state_of(settings: Settings) -> dict[str, Any]:
    state = read_state(state_path(settings.resolved_data_dir))
    assert state is not None, "state.json missing"
    return state


def model_state(settings: Settings, model_id: str) -> dict[str, Any]:
    return next(m for m in state_of(settings)["models"] if m["id"] == model_id)


@asynccontextmanager
async def orchestrator_with_client(
    settings: Settings, **kwargs: Any
) -> AsyncIterator[tuple[Orchestrator, WsRecorder]]:
    """A running orchestrator and one coordinator connected to it from the start."""
    async with (
        running_orchestrator(settings, **kwargs) as orchestrator,
        ws_client(orchestrator.publisher.port) as client,
    ):
        yield orchestrator, client
