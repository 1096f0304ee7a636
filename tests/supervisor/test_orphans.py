"""No orphan survives: not a stop, not a crash of a worker, not a SIGKILLed supervisor."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import IO

import pytest

from crunch_engine.supervisor import ProcessState, Supervisor
from tests.supervisor.conftest import SpecFactory
from tests.supervisor.helpers import GRANDPARENT, group_members, running, wait_state, wait_until

# A worker whose child arms its own parent-death signal, as the orchestrator's model
# servers do (confine script, own session): it dies with the worker, whatever kills it.
CONFINED_PARENT = """
import subprocess, sys, time
from crunch_engine.models.orchestrator.environment import ResourceLimits, confined_argv
sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
child = subprocess.Popen(confined_argv(ResourceLimits(), sleeper), start_new_session=True)
print(f"grandchild {child.pid}")
while True:
    time.sleep(1)
"""

SUPERVISOR_MAIN = """
import asyncio, sys
from crunch_engine.supervisor import ProcessSpec, Supervisor

async def main() -> None:
    spec = ProcessSpec(name="parent", argv=[sys.executable, sys.argv[1]])
    supervisor = Supervisor([spec])
    events = supervisor.subscribe()
    await supervisor.start()
    async for event in events:
        if event.line is not None and event.line.line.startswith("grandchild"):
            child = supervisor.process("parent").pid
            print(f"pids {child} {event.line.line.split()[1]}", flush=True)

if sys.argv[2] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


def grandchild_pid(supervisor: Supervisor, name: str) -> int | None:
    for line in supervisor.logs(name):
        if line.line.startswith("grandchild "):
            return int(line.line.split()[1])
    return None


def kill_quietly(*pids: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_stop_kills_the_whole_process_group(make_spec: SpecFactory) -> None:
    spec = make_spec("parent", GRANDPARENT)
    async with Supervisor([spec]) as supervisor:
        await wait_until(lambda: grandchild_pid(supervisor, "parent"), what="the grandchild")
        pid = supervisor.process("parent").pid
        grandchild = grandchild_pid(supervisor, "parent")
        assert pid is not None and grandchild is not None
        assert os.getpgid(grandchild) == pid  # same group as its parent
        try:
            info = await supervisor.stop_process("parent")
            assert info.state is ProcessState.STOPPED
            assert not running(pid) and not running(grandchild)
            assert group_members(pid) == []
        finally:
            kill_quietly(grandchild)


async def test_a_crashed_worker_takes_its_group_with_it(make_spec: SpecFactory) -> None:
    spec = make_spec("parent", GRANDPARENT, "crash", max_quick_failures=1)
    async with Supervisor([spec]) as supervisor:
        await wait_state(supervisor, "parent", ProcessState.FATAL)
        grandchild = grandchild_pid(supervisor, "parent")
        assert grandchild is not None
        try:
            await wait_until(lambda: not running(grandchild), what="the grandchild to die")
        finally:
            kill_quietly(grandchild)


def read_line(stream: IO[bytes] | None, timeout: float) -> str:
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output within {timeout}s"
    return stream.readline().decode()


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_children_die_with_a_sigkilled_supervisor(tmp_path: Path, loop: str) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent(CONFINED_PARENT))
    main = tmp_path / "supervise.py"
    main.write_text(textwrap.dedent(SUPERVISOR_MAIN))
    supervisor = subprocess.Popen(
        [sys.executable, str(main), str(worker), loop],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        line = read_line(supervisor.stdout, timeout=15)
        assert line.startswith("pids "), line
        pids = [int(part) for part in line.split()[1:]]
        assert all(running(pid) for pid in pids)
        supervisor.kill()
        supervisor.wait(5)
        deadline = time.monotonic() + 5
        while any(running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in pids if running(pid)] == []
    finally:
        kill_quietly(*pids)
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        assert supervisor.stdout is not None
        supervisor.stdout.close()
