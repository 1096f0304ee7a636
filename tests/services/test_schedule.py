"""The cycle scheduler on a controlled clock: grid-aligned, one at a time, skips overruns."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

from crunch_engine.feeds.base import ManualClock
from crunch_engine.services.schedule import CycleScheduler, next_fire

START = datetime(2026, 11, 23, 12, 0, 7, tzinfo=UTC)


def test_next_fire_is_on_the_grid() -> None:
    assert next_fire(START, 60) == datetime(2026, 11, 23, 12, 1, tzinfo=UTC)
    assert next_fire(datetime(2026, 11, 23, 12, 1, tzinfo=UTC), 15) == datetime(
        2026, 11, 23, 12, 1, 15, tzinfo=UTC
    )


class Fires(list):
    """Fire records; ``enough`` is set once ``until`` cycles have started."""

    def __init__(self, until: int) -> None:
        super().__init__()
        self.until = until
        self.enough = asyncio.Event()

    def append(self, item: tuple[str, datetime]) -> None:
        super().append(item)
        if len(self) >= self.until:
            self.enough.set()


async def run_for(scheduler: CycleScheduler, fires: Fires) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.wait_for(fires.enough.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_fires_on_the_clock_grid_per_config() -> None:
    clock = ManualClock(START)
    fires = Fires(12)

    async def cycle(key: str, fire_at: datetime) -> None:
        fires.append((key, fire_at))

    scheduler = CycleScheduler(cycle, [("fast", 15), ("slow", 60)], clock)
    await run_for(scheduler, fires)
    fast = [t for k, t in fires if k == "fast"]
    slow = [t for k, t in fires if k == "slow"]
    assert all(t.second % 15 == 0 and t.microsecond == 0 for t in fast)
    assert all(t.second == 0 for t in slow) and slow
    assert all(b - a == fast[1] - fast[0] for a, b in itertools.pairwise(fast))
    assert fast[1] - fast[0] == datetime(2000, 1, 1, 0, 0, 15) - datetime(2000, 1, 1)


async def test_an_overrunning_cycle_is_never_stacked() -> None:
    clock = ManualClock(START)
    fires = Fires(4)
    running = 0
    most = 0

    async def slow_cycle(key: str, fire_at: datetime) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        fires.append((key, fire_at))
        await clock.sleep(35)  # each cycle takes 35 s of a 10 s schedule
        running -= 1

    scheduler = CycleScheduler(slow_cycle, [("every-10s", 10)], clock)
    await run_for(scheduler, fires)
    assert most == 1
    assert scheduler.cycles["every-10s"].skipped >= 6  # ~3 of every 4 fires skipped
    gaps = [(b - a).total_seconds() for (_, a), (_, b) in itertools.pairwise(fires)]
    assert all(g >= 30 for g in gaps)


async def test_a_failing_cycle_does_not_stop_the_schedule() -> None:
    clock = ManualClock(START)
    fires = Fires(5)

    async def flaky(key: str, fire_at: datetime) -> None:
        fires.append((key, fire_at))
        if len(fires) % 2:
            raise RuntimeError("boom")

    scheduler = CycleScheduler(flaky, [("x", 5)], clock)
    await run_for(scheduler, fires)
    assert len(fires) >= 5
