"""The real worker process (``python -m crunch_engine.workers.orchestrator``): it runs the
demo fleet, announces it, and leaves no model process behind when stopped or killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from crunch_engine.models.orchestrator.status import read_state
from tests.conftest import REPO_ROOT
from tests.models.orchestrator_fixtures.support import (
    CRUNCH_ID,
    copy_demo,
    free_port,
    pid_gone,
    real_server_available,
    wait_until,
    ws_client,
)

pytestmark = pytest.mark.skipif(
    not real_server_available(),
    reason="the worker runs `python -m crunch_engine.models.server`, not written yet",
)


def start_worker(tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUNCH_")}
    env.update(
        CRUNCH_DATA_DIR=str(data_dir),
        CRUNCH_MODELS_DIR=str(copy_demo(tmp_path)),
        CRUNCH_ORCHESTRATOR_PORT=str(port),
        CRUNCH_CRUNCH_ID=CRUNCH_ID,
        CRUNCH_LOG_LEVEL="INFO",
        PYTHONPATH=str(REPO_ROOT),
    )
    log = (tmp_path / "worker.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "crunch_engine.workers.orchestrator"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, data_dir / "orchestrator" / "state.json"


def running_pids(state_file: Path) -> list[int]:
    state = read_state(state_file) or {"models": []}
    return [m["pid"] for m in state["models"] if m["state"] == "RUNNING" and m["pid"]]


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


async def run_fleet(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    port = free_port()
    worker, state_file = start_worker(tmp_path, port)
    try:
        await wait_until(lambda: len(running_pids(state_file)) == 3, 30, "3 RUNNING models")
        async with ws_client(port) as client:
            init = client.messages[0]
            assert init["event"] == "init"
            assert sorted(s["model_id"] for s in init["data"]) == [
                "mean-reversion",
                "momentum",
                "noisy",
            ]
        pids = running_pids(state_file)
        assert sorted(p.pid for p in descendants(worker.pid)) == sorted(pids)
        return worker, pids
    except BaseException:
        worker.kill()
        print((tmp_path / "worker.log").read_text())
        raise


async def test_sigterm_stops_every_model(tmp_path: Path) -> None:
    worker, pids = await run_fleet(tmp_path)
    worker.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(worker.wait, 30)
        log = (tmp_path / "worker.log").read_text()
        assert code == 0, log
        assert all(pid_gone(pid) for pid in pids), log
    finally:
        kill_leftovers(pids)
    state = read_state(tmp_path / "data" / "orchestrator" / "state.json")
    assert state is not None and state["running"] is False
    assert {m["state"] for m in state["models"]} == {"STOPPED"}


def kill_leftovers(pids: list[int]) -> None:
    """A failing test must not leave model servers running on the machine."""
    for pid in pids:
        if not pid_gone(pid):
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
async def test_sigkilled_orchestrator_takes_its_models_along(tmp_path: Path) -> None:
    worker, pids = await run_fleet(tmp_path)
    worker.kill()
    await asyncio.to_thread(worker.wait, 10)
    try:
        await wait_until(lambda: all(pid_gone(pid) for pid in pids), 10, "orphans to die")
    finally:
        kill_leftovers(pids)
