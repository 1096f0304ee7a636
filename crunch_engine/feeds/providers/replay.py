"""Replay feed: real 1-minute candles shipped in the package, played back as a live tape.

The bundled 500 BTCUSDT / ADAUSDT candles (2025-06-01, from tradetropy, MIT) are laid
on the wall clock, because the whole engine (ingestion, tape, predictions, scoring)
runs on wall time. A request at granularity ``G`` gets candles on the epoch-aligned
grid of ``G``, and each ``G``-slot of wall time plays the next real 1-minute candle:
``G = 1m`` is real-time speed, ``5s`` is 12x, ``1s`` is 60x.

Slot ``k = floor((ts_event - anchor) / G)`` is a pure function of time and a fixed
anchor (default 2025-01-01T00:00Z), so every process (market-data worker, a score
worker recovering a window) plays the same tape. Past the last row the tape plays
"ping-pong": rows 0..n-1 forward, then n-1..0 backward, each backward candle time
reversed (open and close swapped). Consecutive candles always join, and prices stay
inside the dataset's own range forever, without rescaling or drift.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.resources import files

from crunch_engine.feeds.base import (
    Clock,
    FeedError,
    FeedFetchRequest,
    FeedHandle,
    FeedSink,
    FeedSubscription,
    SystemClock,
    TaskFeedHandle,
    clip,
    floor_time,
    parse_granularity,
)
from crunch_engine.feeds.contracts import MarketRecord, RecordKind
from crunch_engine.feeds.providers.common import candle_values, run_clocked
from crunch_engine.feeds.settings import FeedSettings
from crunch_engine.timeutil import ensure_utc

logger = logging.getLogger(__name__)

PROVIDER = "replay"
DATASETS = {"BTC": "BTCUSDT_1m.csv", "ADA": "ADAUSDT_1m.csv"}
DEFAULT_ANCHOR = datetime(2025, 1, 1, tzinfo=UTC)
"""Wall time of slot 0: a constant, not the process start, so processes agree."""
MAX_RECORDS = 200_000
"""Largest fetch answered at once: 55 hours of 1s candles, enough for any backfill page."""


@dataclass(frozen=True, slots=True)
class _Row:
    open: float
    high: float
    low: float
    close: float
    volume: float


@cache
def load_dataset(asset: str) -> tuple[_Row, ...]:
    """The bundled candles of ``asset``, oldest first (read once per process)."""
    name = DATASETS.get(asset.upper())
    if name is None:
        raise FeedError(
            f"replay has no data for asset {asset!r}; bundled assets: {', '.join(DATASETS)}"
        )
    text = (files("crunch_engine.feeds") / "data" / name).read_text(encoding="utf-8")
    rows = tuple(
        _Row(
            float(line["open"]),
            float(line["high"]),
            float(line["low"]),
            float(line["close"]),
            float(line["volume"]),
        )
        for line in csv.DictReader(text.splitlines())
    )
    if len(rows) < 2:
        raise FeedError(f"replay dataset {name} is empty or truncated")
    return rows


def ping_pong(rows: Sequence[_Row], k: int) -> _Row:
    """The candle played in slot ``k`` (any integer, also before the anchor).

    Period ``2n``: forward rows, then the same rows backward and time reversed, so the
    close of one slot is the open of the next even at the turns.
    """
    n = len(rows)
    index = k % (2 * n)
    if index < n:
        return rows[index]
    row = rows[2 * n - 1 - index]
    return _Row(row.close, row.high, row.low, row.open, row.volume)


class ReplayFeed:
    """Bundled real candles replayed live on the wall clock, one real minute per slot."""

    provider = PROVIDER

    def __init__(self, *, anchor: datetime | None = None, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._anchor = ensure_utc(anchor) if anchor is not None else DEFAULT_ANCHOR

    @classmethod
    def from_settings(cls, settings: FeedSettings, clock: Clock | None = None) -> ReplayFeed:
        return cls(anchor=settings.replay_anchor, clock=clock)

    @property
    def anchor(self) -> datetime:
        """The wall time of slot 0 (row 0 played forward)."""
        return self._anchor

    def slot(self, ts_event: datetime, granularity: str) -> int:
        """The slot index of the ``granularity`` candle opening at ``ts_event``."""
        return (ensure_utc(ts_event) - self._anchor) // parse_granularity(granularity)

    # -- the tape ---------------------------------------------------------------

    def candle(self, asset: str, start: datetime, granularity: str = "1m") -> MarketRecord:
        """The candle of the ``granularity`` slot containing ``start``."""
        return self._record(asset, "candle", granularity, start)

    def tick(self, asset: str, ts: datetime, granularity: str) -> MarketRecord:
        """The price at ``ts``: the close of the slot that ended then (known at ``ts``)."""
        return self._record(asset, "tick", granularity, ts)

    def _record(self, asset: str, kind: RecordKind, granularity: str, ts: datetime) -> MarketRecord:
        step = parse_granularity(granularity)
        ts = floor_time(ts, step)
        return self._build(
            load_dataset(asset), asset, kind, granularity, ts, (ts - self._anchor) // step
        )

    @staticmethod
    def _build(
        rows: Sequence[_Row], asset: str, kind: RecordKind, granularity: str, ts: datetime, k: int
    ) -> MarketRecord:
        """The record at grid time ``ts`` of slot ``k``; a tick is the close of slot k-1."""
        if kind == "tick":
            values: dict[str, float] = {"price": ping_pong(rows, k - 1).close}
        else:
            row = ping_pong(rows, k)
            values = candle_values(row.open, row.high, row.low, row.close, row.volume)
        return MarketRecord(PROVIDER, asset, kind, granularity, ts, values)

    def newest_closed(self, step: timedelta, kind: RecordKind) -> datetime:
        """The ``ts_event`` of the newest record that exists now: a candle only once its
        slot has ended (``ts_event + step <= now``), a tick as soon as its time has come."""
        now = floor_time(self._clock.now(), step)
        return now if kind == "tick" else now - step

    # -- DataFeed -----------------------------------------------------------------

    async def fetch(self, request: FeedFetchRequest) -> Sequence[MarketRecord]:
        rows = load_dataset(request.asset)
        step = request.step
        first = floor_time(request.start, step)
        if first < request.start:
            first += step
        last = min(floor_time(request.end, step), self.newest_closed(step, request.kind))
        count = (last - first) // step + 1 if last >= first else 0
        wanted = min(count, request.limit) if request.limit is not None else count
        if wanted > MAX_RECORDS:
            raise FeedError(
                f"replay fetch of {wanted} {request.granularity} records for "
                f"{request.asset} is over the limit of {MAX_RECORDS}: narrow the window "
                f"{request.start.isoformat()}..{request.end.isoformat()} or pass a limit"
            )
        k0 = (first - self._anchor) // step
        records = [
            self._build(
                rows, request.asset, request.kind, request.granularity, first + i * step, k0 + i
            )
            for i in range(wanted)
        ]
        logger.info(
            "feed=replay asset=%s kind=%s granularity=%s fetched=%d window=%s..%s",
            request.asset,
            request.kind,
            request.granularity,
            len(records),
            request.start.isoformat(),
            request.end.isoformat(),
        )
        return clip(records, request)

    async def listen(self, subscription: FeedSubscription, sink: FeedSink) -> FeedHandle:
        for asset in subscription.assets:
            load_dataset(asset)
        loop = run_clocked(
            provider=PROVIDER,
            subscription=subscription,
            sink=sink,
            clock=self._clock,
            market_now=self._clock.now,
            to_wall=lambda wall_time: wall_time,
            make_record=lambda asset, ts: self._record(
                asset, subscription.kind, subscription.granularity, ts
            ),
        )
        task = asyncio.create_task(loop, name="replay-listen")
        logger.info(
            "feed=replay listen assets=%s kind=%s granularity=%s anchor=%s",
            ",".join(subscription.assets),
            subscription.kind,
            subscription.granularity,
            self._anchor.isoformat(),
        )
        return TaskFeedHandle(task, PROVIDER)

    async def aclose(self) -> None:
        """Nothing to release: the data lives in memory."""
