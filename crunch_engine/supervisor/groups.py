"""Signals to a whole process group: a worker and everything it forked die together.

Every child is started with ``start_new_session=True``, so its pid is also its process
group id and the group holds its descendants (unless one of them started its own
session, as the orchestrator's model servers do: those die by their parent-death
signal instead).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psutil

POLL_SECONDS = 0.05


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to the group; False when no member is left (or it is not ours)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_alive(pgid: int) -> bool:
    """True while any member of the group exists (a zombie member counts)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def live_members(pgid: int) -> list[int]:
    """Pids of the group's members that still run (zombies excluded).

    A zombie cannot be killed and is not ours to reap (an orphan belongs to init), so
    waiting for it to disappear would only wait out the whole grace period.
    """
    if not group_alive(pgid):
        return []
    members: list[int] = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                members.append(pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


async def wait_group_gone(pgid: int, deadline: float) -> bool:
    """Poll until no member runs or ``deadline`` (``time.monotonic()``) passes."""
    while live_members(pgid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(POLL_SECONDS, remaining))
    return True
