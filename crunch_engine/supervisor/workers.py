"""The engine's four workers as supervisor specs (what ``crunch serve`` runs)."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from crunch_engine.settings import Settings
from crunch_engine.supervisor.models import ProcessSpec

WORKER_MODULES: dict[str, str] = {
    "market-data": "crunch_engine.workers.market_data",
    "orchestrator": "crunch_engine.workers.orchestrator",
    "predict": "crunch_engine.workers.predict",
    "score": "crunch_engine.workers.score",
}
"""Process name -> module run with ``python -m``, in start order."""


def default_specs(
    settings: Settings, extra_env: Mapping[str, str] | None = None
) -> list[ProcessSpec]:
    """One spec per worker, run by this interpreter; each inherits ``os.environ``.

    ``CRUNCH_DATA_DIR`` is pinned to the supervisor's resolved data directory, so every
    worker uses the same database and runtime files whatever its working directory.
    ``extra_env`` goes on top (it wins).
    """
    env = {"CRUNCH_DATA_DIR": str(settings.resolved_data_dir), **dict(extra_env or {})}
    return [
        ProcessSpec(name=name, argv=[sys.executable, "-m", module], extra_env=env)
        for name, module in WORKER_MODULES.items()
    ]
