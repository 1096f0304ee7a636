"""The predict worker: schedule-driven cycles against the model fleet.

``python -m crunch_engine.workers.predict`` or ``crunch worker predict``. Models are
discovered through the orchestrator's WebSocket (ours locally, or CrunchDAO's remote one
at CRUNCH_ORCHESTRATOR_HOST/PORT); each active scheduled prediction config fires on its
grid of the clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime

from crunch_engine.competition import load_competition
from crunch_engine.db.database import Database
from crunch_engine.feeds.base import SystemClock
from crunch_engine.feeds.tape import Tape
from crunch_engine.services.predict import PredictService
from crunch_engine.services.schedule import CycleScheduler
from crunch_engine.settings import Settings
from crunch_engine.workers.runtime import run_worker

logger = logging.getLogger(__name__)


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    from crunch_engine.models.client import ModelClient

    competition = load_competition(settings, os.environ)
    database = Database(settings.effective_database_url)
    client = ModelClient(
        base_classname=settings.model_base_class,
        timeout=settings.model_call_timeout_seconds,
        max_concurrency=settings.model_max_concurrency,
        failure_threshold=settings.model_failure_threshold,
        cooldown_seconds=settings.model_cooldown_seconds,
    )
    try:
        await database.require_current_schema()
        configs = competition.pack.active_configs
        await database.configs.sync(competition.pack.scheduled_prediction_configs)
        tape = Tape(
            database.market,
            provider=settings.feed.provider,
            kind=settings.feed.kind,
            granularity=settings.feed.granularity,
            staleness_fraction=settings.tape_staleness_fraction,
        )
        service = PredictService(
            database, competition, client, tape, call_timeout=settings.model_call_timeout_seconds
        )
        await client.connect_orchestrator(
            settings.orchestrator_host, settings.orchestrator_port, settings.crunch_id
        )
        by_key = {config.scope_key: config.model_dump() for config in configs}

        async def cycle(scope_key: str, fire_at: datetime) -> None:
            await service.run_cycle(by_key[scope_key], fire_at)

        scheduler = CycleScheduler(
            cycle, [(c.scope_key, c.schedule.every_seconds) for c in configs], SystemClock()
        )
        logger.info(
            "predict scopes=%s orchestrator=ws://%s:%d/%s",
            ",".join(f"{c.scope_key}@{c.schedule.every_seconds}s" for c in configs),
            settings.orchestrator_host,
            settings.orchestrator_port,
            settings.crunch_id,
        )
        await scheduler.run(stop)
    finally:
        await client.close()
        await database.close()


def main() -> int:
    return run_worker("predict", _run)


if __name__ == "__main__":
    raise SystemExit(main())
