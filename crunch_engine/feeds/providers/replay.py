"""Replay feed: real 1-minute candles shipped in the package, played back as a live tape.

The bundled 500 BTCUSDT / ADAUSDT candles (2025-06-01, from tradetropy, MIT) are
shifted in time so the newest one closes just before the anchor (process start, to
the minute), and the tape loops: after the last row it continues from the first, every
price of the new cycle multiplied by ``last close / first open`` so the seam has no
jump (cycle ``c`` is scaled by that ratio to the power ``c``, also backwards in time, so
a backfill of any length works). Market time runs ``speed`` times faster than the
clock, so a demo moves within seconds; ``market_now`` tells the engine where it is.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
MINUTE = timedelta(minutes=1)
DATASETS = {"BTC": "BTCUSDT_1m.csv", "ADA": "ADAUSDT_1m.csv"}
MAX_RECORDS = 200_000


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


class ReplayFeed:
    """Bundled real candles replayed as if live, looping forever without price jumps."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        speed: float = 60.0,
        anchor: datetime | None = None,
        clock: Clock | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        self._clock = clock or SystemClock()
        self._speed = speed
        # Market time starts at ``origin`` (exact); candles sit on the minute grid of it.
        self._origin = ensure_utc(anchor or self._clock.now())
        self._anchor = floor_time(self._origin, MINUTE)

    @classmethod
    def from_settings(cls, settings: FeedSettings, clock: Clock | None = None) -> ReplayFeed:
        return cls(speed=settings.replay_speed, anchor=settings.replay_anchor, clock=clock)

    @property
    def anchor(self) -> datetime:
        """The minute at which the newest bundled candle closes (cycle 0 ends here)."""
        return self._anchor

    @property
    def speed(self) -> float:
        return self._speed

    def market_now(self) -> datetime:
        """Where the replayed market is: the origin plus elapsed wall time times speed."""
        elapsed = (self._clock.now() - self._origin).total_seconds()
        return self._origin + timedelta(seconds=elapsed * self._speed)

    def to_wall(self, market_time: datetime) -> datetime:
        """The wall time at which the replayed market reaches ``market_time``."""
        offset = (market_time - self._origin).total_seconds()
        return self._origin + timedelta(seconds=offset / self._speed)

    # -- the tape ---------------------------------------------------------------

    def _minute(self, asset: str, ts: datetime) -> _Row:
        """The 1-minute candle opening at ``ts`` (any time, any cycle), scaled."""
        rows = load_dataset(asset)
        n = len(rows)
        k = int((ts - self._anchor) // MINUTE) + n
        cycle, index = divmod(k, n)
        ratio = rows[-1].close / rows[0].open
        scale = ratio**cycle
        row = rows[index]
        return _Row(
            row.open * scale, row.high * scale, row.low * scale, row.close * scale, row.volume
        )

    def candle(self, asset: str, start: datetime, granularity: str = "1m") -> MarketRecord:
        """The candle opening at ``start``, aggregated from the 1-minute rows."""
        step = _check_step(granularity)
        minutes = [self._minute(asset, start + i * MINUTE) for i in range(step // MINUTE)]
        values = candle_values(
            minutes[0].open,
            max(m.high for m in minutes),
            min(m.low for m in minutes),
            minutes[-1].close,
            round(sum(m.volume for m in minutes), 8),
        )
        return MarketRecord(
            provider=PROVIDER,
            asset=asset,
            kind="candle",
            granularity=granularity,
            ts_event=start,
            values=values,
        )

    def tick(self, asset: str, ts: datetime, granularity: str) -> MarketRecord:
        """The price at ``ts``: the close of the minute that ended then."""
        row = self._minute(asset, ts - MINUTE)
        return MarketRecord(
            provider=PROVIDER,
            asset=asset,
            kind="tick",
            granularity=granularity,
            ts_event=ts,
            values={"price": row.close},
        )

    def _record(self, asset: str, kind: RecordKind, granularity: str, ts: datetime) -> MarketRecord:
        if kind == "tick":
            return self.tick(asset, ts, granularity)
        return self.candle(asset, ts, granularity)

    def newest_closed(self, step: timedelta, kind: RecordKind) -> datetime:
        """The ``ts_event`` of the newest record that exists at ``market_now``."""
        now = floor_time(self.market_now(), step)
        return now if kind == "tick" else now - step

    # -- DataFeed -----------------------------------------------------------------

    async def fetch(self, request: FeedFetchRequest) -> Sequence[MarketRecord]:
        load_dataset(request.asset)
        step = _check_step(request.granularity)
        first = floor_time(request.start, step)
        if first < request.start:
            first += step
        last = min(floor_time(request.end, step), self.newest_closed(step, request.kind))
        count = int((last - first) // step) + 1 if last >= first else 0
        cap = min(request.limit or MAX_RECORDS, MAX_RECORDS)
        records = [
            self._record(request.asset, request.kind, request.granularity, first + i * step)
            for i in range(min(count, cap))
        ]
        logger.info(
            "feed=replay asset=%s kind=%s fetched=%d window=%s..%s",
            request.asset,
            request.kind,
            len(records),
            request.start.isoformat(),
            request.end.isoformat(),
        )
        return clip(records, request)

    async def listen(self, subscription: FeedSubscription, sink: FeedSink) -> FeedHandle:
        for asset in subscription.assets:
            load_dataset(asset)
        _check_step(subscription.granularity)
        loop = run_clocked(
            provider=PROVIDER,
            subscription=subscription,
            sink=sink,
            clock=self._clock,
            market_now=self.market_now,
            to_wall=self.to_wall,
            make_record=lambda asset, ts: self._record(
                asset, subscription.kind, subscription.granularity, ts
            ),
        )
        task = asyncio.create_task(loop, name="replay-listen")
        logger.info(
            "feed=replay listen assets=%s kind=%s granularity=%s speed=%s",
            ",".join(subscription.assets),
            subscription.kind,
            subscription.granularity,
            self._speed,
        )
        return TaskFeedHandle(task, PROVIDER)

    async def aclose(self) -> None:
        """Nothing to release: the data lives in memory."""


def _check_step(granularity: str) -> timedelta:
    step = parse_granularity(granularity)
    if step < MINUTE or step % MINUTE:
        raise FeedError(
            f"replay serves 1-minute data: granularity must be a multiple of 1m, "
            f"got {granularity!r}"
        )
    return step
