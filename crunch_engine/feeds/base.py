"""The feed protocol every provider implements, and the small pieces they share.

A feed works in two modes (see the architecture notes): ``fetch`` pulls a window of
history (backfill, ground-truth recovery) and ``listen`` pushes live records into a sink
until stopped. Both are async because the workers run on asyncio. Time comes from an
injectable ``Clock`` so tests never wait for real minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from crunch_engine.errors import CrunchError
from crunch_engine.feeds.contracts import MarketRecord, RecordKind
from crunch_engine.timeutil import ensure_utc

logger = logging.getLogger(__name__)

_GRANULARITY = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RECORD_KINDS: tuple[RecordKind, ...] = ("tick", "candle")


class FeedError(CrunchError):
    """A provider could not deliver data; the message says which feed and why."""


class FeedAuthError(FeedError):
    """The provider refused the credentials (HTTP 401/403)."""


class FeedRateLimitError(FeedError):
    """The provider kept answering 429/418 after every allowed retry."""


def parse_granularity(text: str) -> timedelta:
    """``"1m"`` -> 60 s. Units s, m, h, d; refuses anything else so typos fail early."""
    match = _GRANULARITY.match(text or "")
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"invalid granularity {text!r}: expected e.g. 1s, 5s, 1m, 5m, 1h, 1d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def floor_time(value: datetime, step: timedelta) -> datetime:
    """``value`` rounded down onto the grid of ``step`` counted from the Unix epoch."""
    seconds = step.total_seconds()
    stamp = ensure_utc(value).timestamp()
    return datetime.fromtimestamp(stamp - (stamp % seconds), UTC)


@dataclass(frozen=True, slots=True)
class FeedFetchRequest:
    """A pull for one series: records with ``start <= ts_event <= end``, oldest first.

    ``limit`` caps the number of records (the oldest ones are kept) so a careless
    window cannot pull a year of minutes.
    """

    asset: str
    kind: RecordKind
    granularity: str
    start: datetime
    end: datetime
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", ensure_utc(self.start))
        object.__setattr__(self, "end", ensure_utc(self.end))
        if self.kind not in RECORD_KINDS:
            raise ValueError(f"kind must be one of {RECORD_KINDS}, got {self.kind!r}")
        parse_granularity(self.granularity)
        if self.end < self.start:
            raise ValueError(f"fetch window ends before it starts: {self.start} > {self.end}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be positive, got {self.limit}")

    @property
    def step(self) -> timedelta:
        return parse_granularity(self.granularity)


@dataclass(frozen=True, slots=True)
class FeedSubscription:
    """What ``listen`` should push: one kind and granularity for several assets."""

    assets: tuple[str, ...]
    kind: RecordKind
    granularity: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "assets", tuple(self.assets))
        if not self.assets:
            raise ValueError("a subscription needs at least one asset")
        if self.kind not in RECORD_KINDS:
            raise ValueError(f"kind must be one of {RECORD_KINDS}, got {self.kind!r}")
        parse_granularity(self.granularity)

    @property
    def step(self) -> timedelta:
        return parse_granularity(self.granularity)


@runtime_checkable
class FeedSink(Protocol):
    """Receives live records. ``on_error(exc)`` is optional: feeds call it when present
    (see ``report_error``) so a worker can surface provider trouble without parsing logs."""

    async def on_record(self, record: MarketRecord) -> None: ...


class FeedHandle(Protocol):
    """A running ``listen``: stop it, or ask whether it still runs."""

    @property
    def running(self) -> bool: ...

    async def stop(self) -> None: ...


@runtime_checkable
class DataFeed(Protocol):
    """A market-data provider. ``provider`` is the name stored on every record."""

    provider: str

    async def fetch(self, request: FeedFetchRequest) -> Sequence[MarketRecord]: ...

    async def listen(self, subscription: FeedSubscription, sink: FeedSink) -> FeedHandle: ...

    async def aclose(self) -> None: ...


class Clock(Protocol):
    """Wall time and waiting, injectable so tests control both."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when told: ``sleep`` advances it instantly.

    Lets a test play hours of market time in milliseconds; every sleep is recorded so a
    test can check backoff delays. ``sleep`` still yields to the loop so other tasks run.
    """

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, value: datetime) -> None:
        self._now = ensure_utc(value)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


async def report_error(sink: FeedSink, error: Exception) -> None:
    """Tell the sink about ``error`` if it wants to know; a failing handler is only logged."""
    handler = getattr(sink, "on_error", None)
    if handler is None:
        return
    try:
        await handler(error)
    except Exception:
        logger.exception("feed sink on_error handler failed")


async def deliver(sink: FeedSink, record: MarketRecord) -> bool:
    """Hand one record to the sink. A sink failure is logged, not fatal: the live loop
    keeps running and the watermark-driven backfill repairs what was lost."""
    try:
        await sink.on_record(record)
    except Exception as exc:
        logger.exception(
            "feed=%s asset=%s sink rejected record ts=%s",
            record.provider,
            record.asset,
            record.ts_event.isoformat(),
        )
        await report_error(sink, exc)
        return False
    return True


class TaskFeedHandle:
    """A ``FeedHandle`` backed by one asyncio task."""

    def __init__(self, task: asyncio.Task[None], name: str) -> None:
        self._task = task
        self._name = name

    @property
    def running(self) -> bool:
        return not self._task.done()

    @property
    def error(self) -> BaseException | None:
        """Why the task ended, if it crashed (None while running or after a clean stop)."""
        if not self._task.done() or self._task.cancelled():
            return None
        return self._task.exception()

    async def stop(self) -> None:
        if self._task.done():
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        logger.info("feed=%s listen stopped", self._name)

    async def wait(self) -> None:
        """Wait until the listen loop ends by itself (tests, supervisors)."""
        await asyncio.shield(self._task)


@dataclass
class QueueSink:
    """A sink that queues records (and keeps errors) for a consumer task or a test."""

    queue: asyncio.Queue[MarketRecord] = field(default_factory=asyncio.Queue)
    errors: list[Exception] = field(default_factory=list)

    async def on_record(self, record: MarketRecord) -> None:
        await self.queue.put(record)

    async def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    async def get(self, within: float = 5.0) -> MarketRecord:
        """The next record, or ``TimeoutError`` after ``within`` seconds."""
        return await asyncio.wait_for(self.queue.get(), within)


def clip(records: list[MarketRecord], request: FeedFetchRequest) -> list[MarketRecord]:
    """Keep the records inside the request window, sorted and unique by ``ts_event``,
    capped at ``limit`` (oldest first)."""
    unique: dict[datetime, MarketRecord] = {}
    for record in records:
        if request.start <= record.ts_event <= request.end:
            unique[record.ts_event] = record
    ordered = [unique[ts] for ts in sorted(unique)]
    return ordered[: request.limit] if request.limit is not None else ordered
