"""One poll of the engine into a ``Snapshot``: all endpoints concurrently, parsed here.

An unreachable server fails the whole poll (the status line says so and the app retries);
an endpoint answering with an error (say ``/control/*`` without the key in attach mode)
only blanks its part, so the leaderboard still shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from crunch_tui.control import ApiError, ControlPlane
from crunch_tui.snapshots import HealthSummary, Snapshot, windows_of

T = TypeVar("T")


async def _part(name: str, call: Callable[[], Awaitable[T]], default: T, problems: list[str]) -> T:
    try:
        return await call()
    except ApiError as exc:
        hint = " (pass --api-key)" if exc.status in (401, 403) else ""
        problems.append(f"{name}: {exc}{hint}")
        return default


async def collect(
    control: ControlPlane, previous: Snapshot, clock: Callable[[], datetime]
) -> Snapshot:
    """The next snapshot; raises ``Unreachable`` when the server does not answer."""
    problems: list[str] = []
    info_call: Awaitable[Any] = (
        _ready(previous.info) if previous.info else _part("info", control.info, {}, problems)
    )
    info, leaderboard, health, processes, feeds = await asyncio.gather(
        info_call,
        _part("leaderboard", control.leaderboard, [], problems),
        _part("models health", control.models_health, [], problems),
        _part("processes", control.processes, [], problems),
        _part("feeds", control.feed_tapes, [], problems),
    )
    leaderboard = sorted(leaderboard, key=lambda row: (row.rank, row.model_name))
    health = sorted(health, key=lambda h: (h.model_name, h.model_id))
    return Snapshot(
        leaderboard=tuple(leaderboard),
        windows=windows_of(leaderboard) or previous.windows,
        health=tuple(health),
        summary=HealthSummary.of(health),
        processes=tuple(sorted(processes, key=lambda p: p.name)),
        feeds=tuple(feeds),
        info=info,
        fetched_at=clock(),
        serial=previous.serial + 1,
        problems=tuple(problems),
    )


async def _ready(value: T) -> T:
    return value
