"""The score worker: resolve, score, aggregate and rank, every few seconds.

``python -m crunch_engine.workers.score`` or ``crunch worker score``. Ground truth is read
from the tape; a window the tape lacks is recovered from the configured feed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta

from crunch_engine.competition import load_competition
from crunch_engine.db.database import Database
from crunch_engine.feeds.base import Clock, SystemClock
from crunch_engine.feeds.registry import default_registry
from crunch_engine.feeds.tape import Tape
from crunch_engine.services.leaderboard import LeaderboardService
from crunch_engine.services.score import ScoreService
from crunch_engine.settings import Settings
from crunch_engine.workers.runtime import run_worker, wait_or_stop

logger = logging.getLogger(__name__)

REBUILD_AT_LEAST_EVERY = timedelta(seconds=60)
PRUNE_EVERY = timedelta(hours=1)


async def score_forever(
    settings: Settings,
    stop: asyncio.Event,
    *,
    scorer: ScoreService,
    leaderboards: LeaderboardService,
    database: Database,
    clock: Clock,
) -> None:
    """The loop, with its parts passed in (tests drive it directly)."""
    last_rebuild = last_prune = None
    while not stop.is_set():
        try:
            changed = 0
            while not stop.is_set():  # drain: a backlog is scored batch after batch
                report = await scorer.score_due(clock.now())
                changed += report.written
                if report.written < scorer.batch_size:
                    break
            now = clock.now()
            if changed or last_rebuild is None or now - last_rebuild >= REBUILD_AT_LEAST_EVERY:
                await leaderboards.rebuild(now)
                last_rebuild = now
            if last_prune is None or now - last_prune >= PRUNE_EVERY:
                deleted = await database.scores.prune_snapshots(
                    now,
                    keep_all=timedelta(hours=settings.leaderboard_keep_all_hours),
                    keep_hourly=timedelta(days=settings.leaderboard_keep_hourly_days),
                )
                if deleted:
                    logger.info("retention snapshots_deleted=%d", deleted)
                last_prune = now
        except Exception:
            logger.exception("score cycle failed; retrying next interval")
        await wait_or_stop(stop, settings.score_interval_seconds)


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    competition = load_competition(settings, os.environ)
    database = Database(settings.effective_database_url)
    feed = default_registry.create_from_settings(settings.feed)
    try:
        await database.require_current_schema()
        tape = Tape(
            database.market,
            provider=settings.feed.provider,
            kind=settings.feed.kind,
            granularity=settings.feed.granularity,
            feed=feed,
            staleness_fraction=settings.tape_staleness_fraction,
        )
        scorer = ScoreService(
            database,
            competition,
            tape,
            settle=timedelta(seconds=settings.score_settle_seconds),
            unresolved_after=timedelta(seconds=settings.score_unresolved_after_seconds),
            batch_size=settings.score_batch_size,
        )
        await score_forever(
            settings,
            stop,
            scorer=scorer,
            leaderboards=LeaderboardService(database, competition),
            database=database,
            clock=SystemClock(),
        )
    finally:
        await feed.aclose()
        await database.close()


def main() -> int:
    return run_worker("score", _run)


if __name__ == "__main__":
    raise SystemExit(main())
