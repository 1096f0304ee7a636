"""The tape: market records and the per-series ingestion watermark."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crunch_engine.db.repositories.batching import insert_for, upsert_rows
from crunch_engine.db.repositories.pg_copy import copy_upsert_market_records
from crunch_engine.db.tables import MarketIngestionStateRow, MarketRecordRow
from crunch_engine.feeds.contracts import MarketRecord, SeriesKey, StoredMarketRecord
from crunch_engine.timeutil import ensure_utc, utc_now

_RECORDS = MarketRecordRow.__table__
_STATE = MarketIngestionStateRow.__table__
_SERIES_COLUMNS = ("provider", "asset", "kind", "granularity")


@dataclass(frozen=True, slots=True)
class SeriesStatus:
    """What the tape holds for one series (``crunch feeds status``, ``/reports/feeds``)."""

    provider: str
    asset: str
    kind: str
    granularity: str
    record_count: int
    oldest_ts: datetime | None
    newest_ts: datetime | None
    watermark_ts: datetime | None
    watermark_updated_at: datetime | None


def _to_stored(row: MarketRecordRow) -> StoredMarketRecord:
    return StoredMarketRecord(
        provider=row.provider,
        asset=row.asset,
        kind=row.kind,
        granularity=row.granularity,
        ts_event=row.ts_event,
        values=dict(row.values_jsonb),
        meta=dict(row.meta_jsonb or {}),
        ts_ingested=row.ts_ingested,
    )


class MarketRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def upsert(
        self, records: Sequence[MarketRecord], *, advance_watermark: bool = True
    ) -> int:
        """Store ``records`` (a later version of a data point replaces the earlier one)
        and, in the same transaction, move each series' watermark to its newest record.

        Returns the number of records written. The watermark never moves backwards.
        """
        if not records:
            return 0
        now = utc_now()
        # The last version of a point within one batch wins (an open candle, then closed).
        unique: dict[tuple[str, str, str, str, datetime], MarketRecord] = {}
        newest: dict[tuple[str, str, str, str], datetime] = {}
        for r in records:
            series = (r.provider, r.asset, r.kind, r.granularity)
            unique[(*series, r.ts_event)] = r
            if series not in newest or r.ts_event > newest[series]:
                newest[series] = r.ts_event
        batch = list(unique.values())
        async with self._sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                await copy_upsert_market_records(session, batch, now)
            else:
                await upsert_rows(
                    session,
                    _RECORDS,
                    [_row(r, now) for r in batch],
                    conflict_columns=(*_SERIES_COLUMNS, "ts_event"),
                    update_columns=("values_jsonb", "meta_jsonb", "ts_ingested"),
                )
            for key, ts in newest.items():
                if advance_watermark:
                    await self._advance(session, SeriesKey(*key), ts, now)
                else:
                    await self._register(session, SeriesKey(*key), now)
        return len(batch)

    async def _register(self, session: AsyncSession, series: SeriesKey, now: datetime) -> None:
        """Make a series known (for status and retention) without moving its watermark."""
        statement = _state_insert(session, series, None, now)
        await session.execute(statement.on_conflict_do_nothing(index_elements=["id"]))

    async def _advance(
        self, session: AsyncSession, series: SeriesKey, ts: datetime, now: datetime
    ) -> None:
        statement = _state_insert(session, series, ts, now)
        newer = func.coalesce(_STATE.c.last_event_ts, statement.excluded.last_event_ts)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "last_event_ts": func.max(newer, statement.excluded.last_event_ts)
                if session.get_bind().dialect.name == "sqlite"
                else func.greatest(newer, statement.excluded.last_event_ts),
                "updated_at": statement.excluded.updated_at,
            },
        )
        await session.execute(statement)

    async def set_watermark(self, series: SeriesKey, ts: datetime | None) -> None:
        """Set a series' watermark exactly (used by repair tools and tests)."""
        now = utc_now()
        async with self._sessions.begin() as session:
            statement = _state_insert(session, series, ts, now)
            statement = statement.on_conflict_do_update(
                index_elements=["id"],
                set_={"last_event_ts": statement.excluded.last_event_ts, "updated_at": now},
            )
            await session.execute(statement)

    async def watermark(self, series: SeriesKey) -> datetime | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(MarketIngestionStateRow.last_event_ts).where(
                    MarketIngestionStateRow.id == series.id
                )
            )

    async def known_series(self) -> list[SeriesKey]:
        """Every series registered by ingestion (cheap: the watermark table, no scan)."""
        async with self._sessions() as session:
            states = (await session.scalars(select(MarketIngestionStateRow))).all()
        keys = [SeriesKey(s.provider, s.asset, s.kind, s.granularity) for s in states]
        return sorted(keys, key=lambda k: (k.provider, k.asset, k.kind, k.granularity))

    async def latest(self, series: SeriesKey, limit: int) -> list[StoredMarketRecord]:
        """The ``limit`` newest records of a series, NEWEST FIRST."""
        statement = (
            select(MarketRecordRow)
            .where(*_series_filter(series))
            .order_by(MarketRecordRow.ts_event.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_to_stored(row) for row in (await session.scalars(statement)).all()]

    async def window(
        self, series: SeriesKey, start: datetime, end: datetime
    ) -> list[StoredMarketRecord]:
        """Records with ``start <= ts_event <= end``, oldest first."""
        statement = (
            select(MarketRecordRow)
            .where(
                *_series_filter(series),
                MarketRecordRow.ts_event >= ensure_utc(start),
                MarketRecordRow.ts_event <= ensure_utc(end),
            )
            .order_by(MarketRecordRow.ts_event.asc())
        )
        async with self._sessions() as session:
            return [_to_stored(row) for row in (await session.scalars(statement)).all()]

    async def last_at_or_before(
        self, series: SeriesKey, at: datetime, not_before: datetime
    ) -> StoredMarketRecord | None:
        """The newest record with ``not_before <= ts_event <= at`` (bounded: an index range)."""
        statement = (
            select(MarketRecordRow)
            .where(
                *_series_filter(series),
                MarketRecordRow.ts_event <= ensure_utc(at),
                MarketRecordRow.ts_event >= ensure_utc(not_before),
            )
            .order_by(MarketRecordRow.ts_event.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            row = await session.scalar(statement)
        return _to_stored(row) if row is not None else None

    async def count(self, series: SeriesKey | None = None) -> int:
        statement = select(func.count()).select_from(MarketRecordRow)
        if series is not None:
            statement = statement.where(*_series_filter(series))
        async with self._sessions() as session:
            return int(await session.scalar(statement) or 0)

    async def delete_before(self, cutoff: datetime) -> int:
        """TTL retention by market time (``ts_event``), never by ingestion time.

        One ranged delete per known series, each served by the primary key."""
        cutoff = ensure_utc(cutoff)
        deleted = 0
        async with self._sessions.begin() as session:
            states = (await session.scalars(select(MarketIngestionStateRow))).all()
            for state in states:
                series = SeriesKey(state.provider, state.asset, state.kind, state.granularity)
                result = await session.execute(
                    delete(MarketRecordRow).where(
                        *_series_filter(series), MarketRecordRow.ts_event < cutoff
                    )
                )
                deleted += int(result.rowcount or 0)
        return deleted

    async def status(self) -> list[SeriesStatus]:
        """One row per series found in the tape or the watermarks."""
        columns = [getattr(MarketRecordRow, name) for name in _SERIES_COLUMNS]
        counts = select(
            *columns,
            func.count().label("record_count"),
            func.min(MarketRecordRow.ts_event).label("oldest_ts"),
            func.max(MarketRecordRow.ts_event).label("newest_ts"),
        ).group_by(*columns)
        async with self._sessions() as session:
            tape = {tuple(row[:4]): row for row in (await session.execute(counts)).all()}
            states = {
                (s.provider, s.asset, s.kind, s.granularity): s
                for s in (await session.scalars(select(MarketIngestionStateRow))).all()
            }
        result = []
        for key in sorted(set(tape) | set(states)):
            row, state = tape.get(key), states.get(key)
            result.append(
                SeriesStatus(
                    *key,
                    record_count=int(row.record_count) if row else 0,
                    oldest_ts=row.oldest_ts if row else None,
                    newest_ts=row.newest_ts if row else None,
                    watermark_ts=state.last_event_ts if state else None,
                    watermark_updated_at=state.updated_at if state else None,
                )
            )
        return result


def _state_insert(
    session: AsyncSession, series: SeriesKey, ts: datetime | None, now: datetime
) -> Any:
    """``INSERT`` of a series' watermark row (the caller chooses the conflict action)."""
    return insert_for(session, _STATE).values(
        id=series.id,
        provider=series.provider,
        asset=series.asset,
        kind=series.kind,
        granularity=series.granularity,
        last_event_ts=ts,
        updated_at=now,
        meta_jsonb={},
    )


def _row(record: MarketRecord, now: datetime) -> dict[str, object]:
    return {
        "provider": record.provider,
        "asset": record.asset,
        "kind": record.kind,
        "granularity": record.granularity,
        "ts_event": record.ts_event,
        "ts_ingested": now,
        "values_jsonb": record.values,
        "meta_jsonb": record.meta,
    }


def _series_filter(series: SeriesKey) -> list[object]:
    return [
        MarketRecordRow.provider == series.provider,
        MarketRecordRow.asset == series.asset,
        MarketRecordRow.kind == series.kind,
        MarketRecordRow.granularity == series.granularity,
    ]
