"""Feed endpoints: what is on the tape, and its newest records."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, status

from crunch_engine.api.context import ApiContext, get_context
from crunch_engine.api.schemas import FeedOut, FeedRecordOut
from crunch_engine.feeds.contracts import SeriesKey

router = APIRouter(tags=["feeds"])


@router.get("/reports/feeds", response_model=list[FeedOut])
async def feeds(context: ApiContext = Depends(get_context)) -> list[FeedOut]:
    """One row per series; empty until the market-data worker has stored something."""
    return [
        FeedOut(
            source=s.provider,
            subject=s.asset,
            kind=s.kind,
            granularity=s.granularity,
            record_count=s.record_count,
            oldest_ts=s.oldest_ts,
            newest_ts=s.newest_ts,
            watermark_ts=s.watermark_ts,
            watermark_updated_at=s.watermark_updated_at,
        )
        for s in await context.database.market.status()
    ]


@router.get("/reports/feeds/tail", response_model=list[FeedRecordOut])
async def feed_tail(
    source: str | None = Query(None, description="Provider (default: the only one)"),
    subject: str | None = Query(None, description="Asset, e.g. BTC"),
    kind: str | None = Query(None, description="tick or candle"),
    granularity: str | None = Query(None, description="e.g. 1m"),
    limit: int = Query(20, ge=1, le=1000),
    context: ApiContext = Depends(get_context),
) -> list[FeedRecordOut]:
    """The newest ``limit`` records of one series, newest first.

    Unspecified fields are filled from the series on the tape when that is unambiguous;
    a filter matching several series asks the caller to be more precise (400).
    """
    wanted = {"provider": source, "asset": subject, "kind": kind, "granularity": granularity}
    if all(value is not None for value in wanted.values()):
        matching = [SeriesKey(**wanted)]  # type: ignore[arg-type]
    else:
        matching = [
            s
            for s in await context.database.market.known_series()
            if all(value is None or getattr(s, name) == value for name, value in wanted.items())
        ]
    if not matching:
        return []
    if len(matching) > 1:
        names = ", ".join(f"{s.provider}/{s.asset}/{s.kind}/{s.granularity}" for s in matching)
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"several feeds match ({names}): give source, subject, kind and granularity",
        )
    key = matching[0]
    return [
        FeedRecordOut(
            source=r.provider,
            subject=r.asset,
            kind=r.kind,
            granularity=r.granularity,
            ts_event=r.ts_event,
            ts_ingested=r.ts_ingested,
            values=dict(r.values),
            meta=dict(r.meta or {}),
        )
        for r in await context.database.market.latest(key, limit)
    ]
