"""The local model orchestrator worker: runs the submissions of the models directory.

``python -m crunch_engine.workers.orchestrator`` or ``crunch worker orchestrator``.
One model-server process per RUNNING model in ``<CRUNCH_MODELS_DIR>/models.yml``,
announced on ``ws://CRUNCH_ORCHESTRATOR_HOST:PORT/CRUNCH_CRUNCH_ID``; status in
``<CRUNCH_DATA_DIR>/orchestrator/state.json``. SIGTERM/SIGINT stop every model first.
"""

from __future__ import annotations

import asyncio

from crunch_engine.models.orchestrator.service import build_orchestrator
from crunch_engine.settings import Settings
from crunch_engine.workers.runtime import run_worker


async def _run(settings: Settings, stop: asyncio.Event) -> None:
    await build_orchestrator(settings).run(stop)


def main() -> int:
    return run_worker("orchestrator", _run)


if __name__ == "__main__":
    raise SystemExit(main())
