"""Who runs a request, and when: one call at a time, a small in-order queue for
pipelining clients, inline execution of calls known to be fast.

Semantics kept from the reference server: one call at a time; an overlapping call is
answered RESOURCE_EXHAUSTED "Server busy" at once. Additions:

- Pipelining: a request carrying ``x-crunch-pipeline: 1`` (only our fast client sends
  it) is queued behind the running call instead, with at most ``queue_limit`` calls of
  one connection queued or running, and runs strictly in arrival order. Beyond the
  limit it is "Server busy" as well.
- Inline execution: handing a call to the worker thread and back costs two thread
  switches and a loop wake-up per call. A Call whose method ran in under
  ``INLINE_MAX_SECONDS`` last time (and never slow recently) runs directly on the event
  loop thread. Trade-off: while an inline call runs, the loop does not answer health
  checks or "busy"; a method that turns out slow is moved back to the worker thread for
  its next ``SLOW_PENALTY`` calls, so a slow model keeps "health answers while a call
  runs". The first call of every method, Setup, and slow methods use the worker thread.
  The watchdog covers both paths (``CallClock``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger("crunch_engine.models.server")

INLINE_MAX_SECONDS = 0.002
SLOW_PENALTY = 20
INLINE_SLICE_SECONDS = 0.005
"""After this long running queued calls inline, let the loop read (e.g. a cancel)."""

Handler = Callable[[bytes], bytes]


class Responder(Protocol):
    """The connection side of a job."""

    queued: int

    def is_open(self, stream_id: int) -> bool: ...

    def on_result(self, stream_id: int, result: bytes | BaseException) -> None: ...

    def flush(self) -> None: ...


class CallClock:
    """When the current call started (0: idle) and what it is; read by the watchdog."""

    __slots__ = ("running", "started_at")

    def __init__(self) -> None:
        self.started_at = 0.0
        self.running = ""


class Job:
    __slots__ = ("conn", "handler", "key", "name", "payload", "stream_id")

    def __init__(
        self,
        conn: Responder,
        stream_id: int,
        name: str,
        handler: Handler,
        payload: bytes,
        key: bytes | None,
    ) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.name = name
        self.handler = handler
        self.payload = payload
        self.key = key  # the method name of a Call, None when never inline


def call_method_key(payload: bytes) -> bytes | None:
    """The methodName of a serialised CallRequest without parsing it (field 1 first)."""
    if len(payload) >= 2 and payload[0] == 0x0A and payload[1] < 0x80:
        return payload[2 : 2 + payload[1]]
    return None


class Dispatcher:
    """The per-process queue of calls and the single worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, queue_limit: int = 4) -> None:
        self.loop = loop
        self.queue_limit = queue_limit
        self.clock = CallClock()
        self.queue: deque[Job] = deque()
        self.running: Job | None = None
        self.slow: dict[bytes, int] = {}  # method -> calls left on the worker thread
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._drain_scheduled = False
        threading.Thread(target=self._worker, name="model-worker", daemon=True).start()

    @property
    def busy(self) -> bool:
        return self.running is not None or bool(self.queue)

    def offer(self, job: Job, pipelined: bool) -> bool:
        """Queue ``job``; False when the caller must answer "Server busy"."""
        idle = self.running is None and not self.queue
        if not idle and (not pipelined or job.conn.queued >= self.queue_limit):
            return False
        job.conn.queued += 1
        self.queue.append(job)
        return True

    def drain(self) -> None:
        """Run queued jobs: inline ones now, the first threaded one on the worker."""
        self._drain_scheduled = False
        queue_, clock = self.queue, self.clock
        began = time.perf_counter()
        while queue_ and self.running is None:
            job = queue_.popleft()
            if not job.conn.is_open(job.stream_id):
                job.conn.queued -= 1
                continue  # cancelled by the client while queued
            key = job.key
            if key is None or self.slow.get(key, 1):
                self.running = job
                clock.running = job.name
                clock.started_at = time.monotonic()
                self._jobs.put(job)
                break
            clock.running = job.name
            clock.started_at = started = time.monotonic()
            try:
                result: bytes | BaseException = job.handler(job.payload)
            except Exception as error:  # handlers do not raise; UNKNOWN if one does
                result = error
            elapsed = time.monotonic() - started
            clock.started_at = 0.0
            if elapsed > INLINE_MAX_SECONDS:
                self.slow[key] = SLOW_PENALTY
            job.conn.queued -= 1
            job.conn.on_result(job.stream_id, result)
            # Send each answer before the next call starts: that call may turn out slow,
            # and a call's answer must not wait for its successor.
            job.conn.flush()
            if queue_ and time.perf_counter() - began > INLINE_SLICE_SECONDS:
                self._schedule_drain()
                break

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.loop.call_soon(self.drain)

    def _worker(self) -> None:
        get, monotonic, clock = self._jobs.get, time.monotonic, self.clock
        call_soon = self.loop.call_soon_threadsafe
        while True:
            job = get()
            started = monotonic()
            try:
                result: bytes | BaseException = job.handler(job.payload)
            except BaseException as error:  # reported as UNKNOWN by the loop
                result = error
            elapsed = monotonic() - started
            clock.started_at = 0.0
            try:
                call_soon(self._done, job, result, elapsed)
            except RuntimeError:  # the loop is closed: shutting down
                return

    def _done(self, job: Job, result: bytes | BaseException, elapsed: float) -> None:
        self.running = None
        key = job.key
        if key is not None:
            if elapsed > INLINE_MAX_SECONDS:
                self.slow[key] = SLOW_PENALTY
            else:
                left = self.slow.get(key, 1)
                self.slow[key] = max(0, left - 1)
        job.conn.queued -= 1
        job.conn.on_result(job.stream_id, result)
        job.conn.flush()
        if self.queue:
            self.drain()


def start_watchdog(clock: CallClock, hard_limit: float, exit_code: int = 86) -> None:
    """Exit the process when one call runs past ``hard_limit`` seconds.

    A Python thread cannot be interrupted; the orchestrator restarts the process. Works
    for inline calls too: this thread gets the GIL at the interpreter's switch interval.
    """

    def watch() -> None:
        period = min(1.0, max(0.05, hard_limit / 10))
        while True:
            time.sleep(period)
            started = clock.started_at
            if started and time.monotonic() - started > hard_limit:
                logger.critical(
                    "%s has run for more than %.1f s (hard limit): exiting with code %d",
                    clock.running or "a call",
                    hard_limit,
                    exit_code,
                )
                for handler in logging.getLogger().handlers:
                    handler.flush()
                os._exit(exit_code)

    threading.Thread(target=watch, name="model-watchdog", daemon=True).start()
