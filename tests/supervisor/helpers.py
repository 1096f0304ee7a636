"""Worker scripts and polling helpers shared by the supervisor tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import psutil

from crunch_engine.supervisor import ProcessInfo, ProcessState, Subscription, Supervisor

TALKER = """
import sys, time
print("\\x1b[31mred\\x1b[0m [red]not markup[/red]")
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
    print(f"out {i}")
    print(f"err {i}", file=sys.stderr)
print("READY")
while True:
    time.sleep(1)
"""

CRASH = """
import sys
print("boom: something went wrong", file=sys.stderr)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
"""

STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready")
while True:
    time.sleep(1)
"""

GRANDPARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(f"grandchild {child.pid}")
if len(sys.argv) > 1 and sys.argv[1] == "crash":
    sys.exit(3)
while True:
    time.sleep(1)
"""


async def wait_until(
    predicate: Callable[[], object], within: float = 5.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_state(
    supervisor: Supervisor, name: str, state: ProcessState, within: float = 5.0
) -> None:
    await wait_until(
        lambda: supervisor.process(name).state is state,
        within,
        f"{name} to be {state} (is {supervisor.process(name).state})",
    )


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait long for init to reap it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if (
                proc.pid != 0
                and psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE
                and os.getpgid(proc.pid) == pgid
            ):
                members.append(proc.pid)
        except (psutil.Error, ProcessLookupError):
            continue
    return members


async def next_states(
    subscription: Subscription, count: int, within: float = 5.0
) -> list[ProcessInfo]:
    """The next ``count`` state events (log events skipped)."""
    out: list[ProcessInfo] = []
    async with asyncio.timeout(within):
        async for event in subscription:
            if event.kind == "state" and event.info is not None:
                out.append(event.info)
                if len(out) == count:
                    break
    return out
