"""Schedule-driven cycles: each config fires on its ``every_seconds`` grid of the clock.

Not feed-driven (the incumbent predicted on every feed record). Cycles run one at a time
because a model serves one call at a time; when a config's next fire time comes while its
previous cycle is still queued or running, that fire is skipped and logged, so an
overrunning cycle never piles up work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from crunch_engine.feeds.base import Clock

logger = logging.getLogger(__name__)


def next_fire(now: datetime, every_seconds: int) -> datetime:
    """The first grid time strictly after ``now`` (grid counted from the Unix epoch)."""
    stamp = now.timestamp()
    return datetime.fromtimestamp((stamp // every_seconds + 1) * every_seconds, UTC)


@dataclass
class ScheduledCycle:
    key: str
    every_seconds: int
    next_at: datetime
    busy: bool = False
    fired: int = 0
    skipped: int = 0


@dataclass
class CycleScheduler:
    """Runs ``run_cycle(key, fire_time)`` for every due config, one cycle at a time."""

    run_cycle: Callable[[str, datetime], Awaitable[object]]
    schedules: Sequence[tuple[str, int]]
    clock: Clock
    cycles: dict[str, ScheduledCycle] = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = self.clock.now()
        self.cycles = {
            key: ScheduledCycle(key, every, next_fire(now, every)) for key, every in self.schedules
        }
        self._queue: asyncio.Queue[tuple[str, datetime]] = asyncio.Queue()

    def _fire_due(self) -> None:
        now = self.clock.now()
        for cycle in self.cycles.values():
            if cycle.next_at > now:
                continue
            # Woken late (an overrun, a suspended machine): only the latest grid point
            # fires; the ones in between are counted and logged as skipped.
            missed = int((now - cycle.next_at).total_seconds() // cycle.every_seconds)
            fire_at = cycle.next_at + timedelta(seconds=missed * cycle.every_seconds)
            cycle.next_at = fire_at + timedelta(seconds=cycle.every_seconds)
            if cycle.busy:
                missed += 1
            if missed:
                cycle.skipped += missed
                logger.warning(
                    "skip scope=%s fires=%d up to %s: the previous cycle overran (skipped=%d)",
                    cycle.key,
                    missed,
                    fire_at.isoformat(),
                    cycle.skipped,
                )
            if cycle.busy:
                continue
            cycle.busy = True
            self._queue.put_nowait((cycle.key, fire_at))

    async def _runner(self) -> None:
        while True:
            key, fire_at = await self._queue.get()
            try:
                await self.run_cycle(key, fire_at)
                self.cycles[key].fired += 1
            except Exception:
                logger.exception("cycle scope=%s failed; the next one runs on schedule", key)
            finally:
                self.cycles[key].busy = False

    async def run(self, stop: asyncio.Event) -> None:
        runner = asyncio.create_task(self._runner(), name="cycle-runner")
        try:
            while not stop.is_set():
                self._fire_due()
                wake = min(c.next_at for c in self.cycles.values())
                delay = max(0.0, (wake - self.clock.now()).total_seconds())
                sleeper = asyncio.create_task(self.clock.sleep(delay))
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
                for task in (sleeper, stopper):
                    task.cancel()
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
