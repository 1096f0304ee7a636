"""The market-data worker: backfill from the watermark, then live ingestion, forever.

``python -m crunch_engine.workers.market_data`` or ``crunch worker market-data``.
Provider trouble never kills it: failures are logged and retried with capped
exponential backoff, and each reconnect starts with a catch-up that fills the gap.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from crunch_engine.db.database import Database
from crunch_engine.feeds.base import DataFeed, FeedSubscription, TaskFeedHandle
from crunch_engine.feeds.providers.common import backoff_delay
from crunch_engine.feeds.registry import default_registry
from crunch_engine.services.ingestion import LiveWriter, MarketIngestion
from crunch_engine.settings import Settings
from crunch_engine.workers.runtime import run_worker, wait_or_stop

logger = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 1.0
RETENTION_EVERY = timedelta(hours=1)


async def enforce_retention(
    database: Database, settings: Settings, ingestion: MarketIngestion
) -> None:
    cutoff = ingestion.clock.now() - timedelta(days=settings.market_retention_days)
    deleted = await database.market.delete_before(cutoff)
    if deleted:
        logger.info("retention deleted=%d older_than=%s", deleted, cutoff.isoformat())


async def ingest_forever(
    settings: Settings,
    stop: asyncio.Event,
    *,
    database: Database,
    feed: DataFeed,
) -> None:
    """The worker's loop, with its parts passed in (the tests drive it directly)."""
    feed_settings = settings.feed
    ingestion = MarketIngestion(
        database.market, feed, kind=feed_settings.kind, granularity=feed_settings.granularity
    )
    window = timedelta(hours=settings.market_backfill_hours)
    subscription = FeedSubscription(
        tuple(feed_settings.assets), feed_settings.kind, feed_settings.granularity
    )
    failures = 0
    last_retention = None
    while not stop.is_set():
        writer = LiveWriter(ingestion)
        handle = None
        try:
            for asset in feed_settings.assets:
                await ingestion.catch_up(asset, window)
            writer.start()
            handle = await feed.listen(subscription, writer)
            logger.info(
                "live feed=%s assets=%s listening", feed.provider, ",".join(subscription.assets)
            )
            failures = 0
            while not stop.is_set() and handle.running:
                now = ingestion.clock.now()
                if last_retention is None or now - last_retention >= RETENTION_EVERY:
                    await enforce_retention(database, settings, ingestion)
                    last_retention = now
                await wait_or_stop(stop, HEALTH_CHECK_SECONDS)
            if not stop.is_set():
                reason = handle.error if isinstance(handle, TaskFeedHandle) else None
                raise RuntimeError(f"live feed ended: {reason or writer.last_error or 'unknown'}")
        except Exception as exc:  # provider or database trouble: log, back off, retry
            failures += 1
            delay = backoff_delay(
                failures, feed_settings.backoff_seconds, feed_settings.max_backoff_seconds
            )
            logger.error(
                "feed=%s failure=%d retry_in=%.1fs: %s", feed.provider, failures, delay, exc
            )
            if await wait_or_stop(stop, delay):
                break
        finally:
            if handle is not None:
                await handle.stop()
            try:
                await writer.stop()
            except Exception as exc:
                logger.error("feed=%s final flush failed: %s", feed.provider, exc)


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    database = Database(settings.effective_database_url)
    feed = default_registry.create_from_settings(settings.feed)
    try:
        await database.require_current_schema()
        await ingest_forever(settings, stop, database=database, feed=feed)
    finally:
        await feed.aclose()
        await database.close()


def main() -> int:
    return run_worker("market_data", _run)


if __name__ == "__main__":
    raise SystemExit(main())
