"""Market-data ingestion: resumable backfill from the watermark and batched live writes.

The watermark of a series means "every point up to here is stored"; it advances in the
same transaction as the rows it covers, so a process killed at any moment resumes from
exactly where its last commit ended: no duplicate, no gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crunch_engine.db.repositories.market import MarketRepository
from crunch_engine.feeds.base import (
    Clock,
    DataFeed,
    FeedFetchRequest,
    SystemClock,
    floor_time,
    parse_granularity,
)
from crunch_engine.feeds.contracts import MarketRecord, SeriesKey
from crunch_engine.timeutil import ensure_utc, to_iso

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    series: SeriesKey
    start: datetime
    end: datetime
    position: datetime
    stored: int
    pages: int
    elapsed: float

    @property
    def fraction(self) -> float:
        total = (self.end - self.start).total_seconds()
        done = (self.position - self.start).total_seconds()
        return 1.0 if total <= 0 else min(1.0, max(0.0, done / total))

    @property
    def rows_per_second(self) -> float:
        return self.stored / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True, slots=True)
class BackfillResult:
    series: SeriesKey
    requested_from: datetime
    resumed_from: datetime
    end: datetime
    stored: int
    pages: int
    elapsed: float

    @property
    def up_to_date(self) -> bool:
        return self.resumed_from > self.end


ProgressCallback = Callable[[BackfillProgress], None]


class MarketIngestion:
    """Writes one feed's records for one kind and granularity into the tape."""

    def __init__(
        self,
        market: MarketRepository,
        feed: DataFeed,
        *,
        kind: str = "candle",
        granularity: str = "1m",
        page_size: int = 1000,
        clock: Clock | None = None,
    ) -> None:
        self.market = market
        self.feed = feed
        self.kind = kind
        self.granularity = granularity
        self.step = parse_granularity(granularity)
        self.page_size = page_size
        self.clock = clock or SystemClock()

    def series(self, asset: str) -> SeriesKey:
        return SeriesKey(self.feed.provider, asset, self.kind, self.granularity)

    def last_closed(self, now: datetime | None = None) -> datetime:
        """ts_event of the newest point that is final now (a candle must have closed)."""
        now = ensure_utc(now or self.clock.now())
        newest = floor_time(now, self.step)
        return newest - self.step if self.kind == "candle" else newest

    async def backfill(
        self,
        asset: str,
        since: datetime,
        until: datetime | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> BackfillResult:
        """Store ``[since, until]`` page by page, resuming after the watermark."""
        series = self.series(asset)
        since = floor_time(ensure_utc(since), self.step)
        end = min(ensure_utc(until), self.last_closed()) if until else self.last_closed()
        watermark = await self.market.watermark(series)
        start = since
        if watermark is not None and watermark >= since:
            start = watermark + self.step
        started = time.perf_counter()
        stored = pages = 0
        position = start
        while position <= end:
            page_end = min(position + self.step * (self.page_size - 1), end)
            records = await self.feed.fetch(
                FeedFetchRequest(asset, self.kind, self.granularity, position, page_end)  # type: ignore[arg-type]
            )
            final = [r for r in records if r.ts_event <= end]
            stored += await self.market.upsert(final)
            pages += 1
            position = page_end + self.step
            if progress is not None:
                progress(
                    BackfillProgress(
                        series, start, end, position, stored, pages, time.perf_counter() - started
                    )
                )
        result = BackfillResult(
            series, since, start, end, stored, pages, time.perf_counter() - started
        )
        if pages:
            logger.info(
                "backfill feed=%s asset=%s from=%s to=%s stored=%d pages=%d seconds=%.2f",
                series.provider,
                asset,
                to_iso(start),
                to_iso(end),
                stored,
                pages,
                result.elapsed,
            )
        return result

    async def catch_up(self, asset: str, window: timedelta) -> BackfillResult:
        """From the watermark (or ``now - window`` on an empty tape) up to now."""
        watermark = await self.market.watermark(self.series(asset))
        since = watermark + self.step if watermark is not None else self.clock.now() - window
        return await self.backfill(asset, since)


@dataclass
class LiveWriter:
    """A feed sink that batches live records and repairs gaps before writing.

    Records are flushed every ``flush_seconds`` or ``batch_size`` records. Before a
    batch is written, a hole between the watermark and the batch (a disconnect, a
    restart) is backfilled from the feed, so the watermark never skips missing points.
    """

    ingestion: MarketIngestion
    batch_size: int = 500
    flush_seconds: float = 0.25
    written: int = 0
    malformed: int = 0
    _pending: list[MarketRecord] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _task: asyncio.Task[None] | None = None
    last_error: Exception | None = None

    async def on_record(self, record: MarketRecord) -> None:
        if record.kind != self.ingestion.kind or record.granularity != self.ingestion.granularity:
            self.malformed += 1
            logger.warning("live feed=%s skipped unexpected record %r", record.provider, record)
            return
        self._pending.append(record)
        if len(self._pending) >= self.batch_size:
            await self.flush()

    async def on_error(self, error: Exception) -> None:
        self.last_error = error

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_loop(), name="live-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:
                logger.exception("live write failed; records are kept and retried")

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch = self._pending
            self._pending = []
            segments = self._segments(batch)
            while segments:
                try:
                    await self._repair_gaps(segments[0])
                    self.written += await self.ingestion.market.upsert(segments[0])
                except Exception:
                    self._pending = [r for segment in segments for r in segment] + self._pending
                    raise
                segments.pop(0)
            logger.debug("live feed=%s stored=%d", batch[0].provider, len(batch))

    def _segments(self, batch: list[MarketRecord]) -> list[list[MarketRecord]]:
        """The batch cut at every hole between consecutive candles of one asset.

        Written in order, each segment's gap repair runs against a watermark that
        already covers the segment before it, so a hole inside one batch (a drop and
        a reconnect within one flush) is backfilled too, never jumped over.
        """
        if self.ingestion.kind != "candle":
            return [batch]
        step = self.ingestion.step
        segments: list[list[MarketRecord]] = []
        by_asset: dict[str, list[MarketRecord]] = {}
        for record in batch:
            by_asset.setdefault(record.asset, []).append(record)
        for records in by_asset.values():
            records.sort(key=lambda r: r.ts_event)
            current = [records[0]]
            for record in records[1:]:
                if record.ts_event - current[-1].ts_event > step:
                    segments.append(current)
                    current = []
                current.append(record)
            segments.append(current)
        return segments

    async def _repair_gaps(self, batch: list[MarketRecord]) -> None:
        step = self.ingestion.step
        first_by_asset: dict[str, datetime] = {}
        for record in batch:
            current = first_by_asset.get(record.asset)
            if current is None or record.ts_event < current:
                first_by_asset[record.asset] = record.ts_event
        for asset, first in first_by_asset.items():
            watermark = await self.ingestion.market.watermark(self.ingestion.series(asset))
            if watermark is not None and first > watermark + step:
                logger.info(
                    "gap feed=%s asset=%s from=%s to=%s: backfilling",
                    self.ingestion.feed.provider,
                    asset,
                    to_iso(watermark + step),
                    to_iso(first - step),
                )
                await self.ingestion.backfill(asset, watermark + step, first - step)
