"""CPU and memory of the supervised processes, sampled in the background with psutil.

Never on a read path: process-compose burned a whole core computing these in its UI
loop. A read (``Supervisor.processes()``) only copies the last sample.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import psutil

from crunch_engine.supervisor.managed import ManagedProcess

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0


class Sampler:
    """Keeps one ``psutil.Process`` per pid: ``cpu_percent`` measures since the last call
    on the same object, so the first sample of a pid only primes it (CPU stays None)."""

    def __init__(
        self, targets: Callable[[], Iterable[ManagedProcess]], interval: float = DEFAULT_INTERVAL
    ) -> None:
        if interval <= 0:
            raise ValueError(f"sample interval must be > 0, got {interval}")
        self._targets = targets
        self.interval = interval
        self._handles: dict[int, psutil.Process] = {}

    def sample_once(self) -> None:
        """One pass over the live children (a few /proc reads each: microseconds)."""
        seen: set[int] = set()
        for target in self._targets():
            pid = target.pid
            if pid is None:
                continue
            seen.add(pid)
            try:
                handle = self._handles.get(pid)
                if handle is None:
                    handle = psutil.Process(pid)
                    handle.cpu_percent(None)
                    self._handles[pid] = handle
                    cpu: float | None = None
                else:
                    cpu = handle.cpu_percent(None)
                with handle.oneshot():
                    if handle.status() == psutil.STATUS_ZOMBIE:
                        continue  # exited, not reaped yet: not alive
                    rss = handle.memory_info().rss
            except psutil.Error:
                self._handles.pop(pid, None)
                continue
            target.record_sample(pid, cpu, rss)
        for pid in set(self._handles) - seen:
            del self._handles[pid]

    async def run(self) -> None:
        """Sample every ``interval`` seconds until cancelled; a failed pass is logged."""
        while True:
            try:
                self.sample_once()
            except Exception:
                logger.exception("process sampling failed")
            await asyncio.sleep(self.interval)
