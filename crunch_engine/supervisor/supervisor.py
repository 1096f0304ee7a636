"""The supervisor: a set of managed processes, their sampler and their event stream.

A library with no UI imports: ``crunch serve`` (the HTTP API) and a TUI in the same
process read the same state through this object.

Children die with the supervisor even when it is SIGKILLed (parent-death signal set
by the confine script). The kernel sends it when the *thread* that forked the child
ends, so run the supervisor on a loop in a thread that lives as long as the process
(the main thread, as ``asyncio.run``/``uvloop.run`` do).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Iterable
from types import TracebackType

from crunch_engine.supervisor.events import DEFAULT_QUEUE_SIZE, EventHub, Subscription
from crunch_engine.supervisor.managed import DEFAULT_LOG_LINES, ManagedProcess
from crunch_engine.supervisor.models import (
    LogLine,
    ProcessInfo,
    ProcessSpec,
    UnknownProcessError,
)
from crunch_engine.supervisor.sampler import DEFAULT_INTERVAL, Sampler

logger = logging.getLogger(__name__)


class Supervisor:
    """Start, watch, restart and stop worker processes; expose their state and output."""

    def __init__(
        self,
        specs: Iterable[ProcessSpec],
        *,
        log_lines: int = DEFAULT_LOG_LINES,
        sample_interval: float = DEFAULT_INTERVAL,
        subscriber_queue: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        specs = list(specs)
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate process names: {', '.join(duplicates)}")
        if log_lines < 1:
            raise ValueError(f"log_lines must be >= 1, got {log_lines}")
        self._seq = itertools.count(1)
        self._hub = EventHub(subscriber_queue)
        self._processes: dict[str, ManagedProcess] = {
            spec.name: ManagedProcess(
                spec,
                publish=self._hub.publish,
                next_seq=self._seq.__next__,
                log_lines=log_lines,
            )
            for spec in specs
        }
        self._sampler = Sampler(self._processes.values, sample_interval)
        self._sampler_task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sampler and every ``autostart`` process (concurrently). Idempotent."""
        if self._sampler_task is None or self._sampler_task.done():
            self._sampler_task = asyncio.create_task(self._sampler.run(), name="supervisor-sampler")
        autostart = [p for p in self._processes.values() if p.spec.autostart]
        await asyncio.gather(*(p.start() for p in autostart))

    async def stop(self) -> None:
        """Stop every process concurrently and end the subscriptions. Idempotent.

        Whatever happens (an error, a cancelled shutdown), no child is left running.
        """
        task, self._sampler_task = self._sampler_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            results = await asyncio.gather(
                *(p.stop() for p in self._processes.values()), return_exceptions=True
            )
            for process, result in zip(self._processes.values(), results, strict=True):
                if isinstance(result, BaseException):
                    logger.error("%s: stop failed", process.name, exc_info=result)
        finally:
            for process in self._processes.values():
                process.kill_now()
            self._hub.finish_all()

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- actions (each returns the state once applied) ------------------------------

    async def start_process(self, name: str) -> ProcessInfo:
        """Start ``name`` now: also out of backoff or fatal (the failure count is cleared)."""
        return await self._get(name).start()

    async def stop_process(self, name: str) -> ProcessInfo:
        """SIGTERM its group, SIGKILL after its grace period; it stays stopped."""
        return await self._get(name).stop()

    async def restart_process(self, name: str) -> ProcessInfo:
        """Stop it if it runs, then start it with the failure count cleared."""
        return await self._get(name).restart()

    # --- reads (no system calls) ----------------------------------------------------

    def processes(self) -> list[ProcessInfo]:
        """Every process, in the order of the specs."""
        return [p.info() for p in self._processes.values()]

    def process(self, name: str) -> ProcessInfo:
        return self._get(name).info()

    def logs(self, process: str | None = None, limit: int = 200) -> list[LogLine]:
        """The last ``limit`` lines, oldest first; of every process merged by ``seq``
        when ``process`` is None."""
        if process is not None:
            return self._get(process).tail(limit)
        if limit <= 0:
            return []
        tails = [p.tail(limit) for p in self._processes.values()]
        merged = list(heapq.merge(*tails, key=lambda line: line.seq))
        return merged[-limit:]

    def subscribe(self, queue_size: int | None = None) -> Subscription:
        """Events from now on (``async for``); ``aclose()`` or ``async with`` to leave.

        A subscriber that falls behind by more than ``queue_size`` events loses the
        oldest ones (counted in ``Subscription.dropped``) instead of slowing us down.
        """
        return self._hub.subscribe(queue_size)

    def _get(self, name: str) -> ManagedProcess:
        try:
            return self._processes[name]
        except KeyError:
            raise UnknownProcessError(name, list(self._processes)) from None
