"""Misbehaving participant models against the real orchestrator, client and predict
service: each gets the right status and reason, the good models are unaffected, a cycle
is bounded by the call deadline, and models that crash or hang come back."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from crunch_engine.competition import load_competition
from crunch_engine.db.database import Database
from crunch_engine.db.migrate import upgrade_database
from crunch_engine.feeds.tape import Tape
from crunch_engine.models.client import ModelClient
from crunch_engine.models.orchestrator.pids_cgroup import PidsCgroups
from crunch_engine.services.predict import PredictService
from crunch_engine.settings import DEMO_MODELS_DIR, load_settings
from tests.models.orchestrator_fixtures.support import (
    CRUNCH_ID,
    fast_policy,
    make_settings,
    running_orchestrator,
    wait_until,
)

pytestmark = pytest.mark.slow
DEADLINE = 2.0

FAULTS = {
    "raiser": "raise RuntimeError('model exploded: bad day')",
    "hanger": "time.sleep(3600)",
    "crasher": "os._exit(3)",
    "unencodable": "return {'p_up': 0.5, 'when': object()}",
    "garbage": "return {'p_up': 'very likely'}",
    "huge": "return {'p_up': 0.25, 'pad': 'x' * 50_000_000}",
    "spinner": "while True:\n            pass",
    "allocator": "blocks = []\n        while True:\n            blocks.append(bytearray(50_000_000))",
    "forker": "while True:\n            if os.fork() == 0:\n                time.sleep(600)\n                os._exit(0)",
}
# A fork bomb is only contained where the process cap holds: RLIMIT_NPROC for a normal
# user, a pids cgroup for root (the kernel ignores RLIMIT_NPROC for root).
FORK_CONTAINED = os.geteuid() != 0 or PidsCgroups.detect() is not None
if not FORK_CONTAINED:
    del FAULTS["forker"]
EXPECTED = {
    "momentum": ("SUCCESS", None),
    "steady": ("SUCCESS", None),
    "raiser": ("FAILED", "model exploded: bad day"),
    "hanger": ("TIMEOUT", None),
    "crasher": ("ABSENT", "disconnected during the call"),
    "unencodable": ("FAILED", None),
    "garbage": ("INVALID", "'p_up' must be a number"),
    "huge": ("SUCCESS|TIMEOUT", None),  # 50 MB: delivered, or cut by the deadline
    "spinner": ("TIMEOUT", None),
    "allocator": ("FAILED", "MemoryError"),
    "forker": ("FAILED", "Resource temporarily unavailable"),
}
if not FORK_CONTAINED:
    del EXPECTED["forker"]


def write_fleet(models_dir: Path) -> None:
    shutil.copytree(DEMO_MODELS_DIR / "momentum", models_dir / "momentum")
    (models_dir / "steady").mkdir()
    (models_dir / "steady" / "main.py").write_text(
        "from crunch_engine.demo.tracker import TrackerBase\n\n\n"
        "class Steady(TrackerBase):\n    def predict(self, **scope):\n        return {'p_up': 0.5}\n"
    )
    for name, body in FAULTS.items():
        (models_dir / name).mkdir()
        (models_dir / name / "main.py").write_text(
            "import os\nimport time\n\nfrom crunch_engine.demo.tracker import TrackerBase\n\n\n"
            f"class Faulty(TrackerBase):\n    def predict(self, **scope):\n        {body}\n"
        )
    entries = [
        {"id": name, "name": name, "submission": name, "desired_state": "RUNNING"}
        for name in ["momentum", "steady", *FAULTS]
    ]
    (models_dir / "models.yml").write_text(yaml.safe_dump({"models": entries}))


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}"
    await upgrade_database(url)
    database = Database(url)
    yield database
    await database.close()


async def test_faulty_models_get_the_right_status(
    tmp_path: Path, sqlite_database: Database
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    write_fleet(models_dir)
    settings = make_settings(
        tmp_path, models_dir, model_hard_limit_seconds=4.0, model_memory_limit_mb=512
    )
    competition = load_competition(load_settings(pack="baseline"), {})
    config = competition.pack.active_configs[0].model_dump()
    async with running_orchestrator(settings, policy=fast_policy()) as orchestrator:
        client = ModelClient(
            base_classname=settings.model_base_class, timeout=DEADLINE, failure_threshold=100
        )
        await client.connect_orchestrator("127.0.0.1", orchestrator.publisher.port, CRUNCH_ID)
        try:
            await client.wait_ready(len(EXPECTED), timeout=60)
            deployments = {e.model_id: e.deployment_id for e in client.known_models()}
            tape = Tape(sqlite_database.market, provider="replay", granularity="5s")
            service = PredictService(
                sqlite_database, competition, client, tape, call_timeout=DEADLINE
            )

            started = time.perf_counter()
            report = await service.run_cycle(config, datetime.now(UTC))
            elapsed = time.perf_counter() - started
            assert report.seconds_models < DEADLINE + 1.5, report  # faults only in predict
            assert elapsed < DEADLINE + 3.0

            rows = {p.model_id: p for p in await sqlite_database.predictions.latest(limit=100)}
            for model, (status, reason) in EXPECTED.items():
                row = rows[model]
                assert row.status in status.split("|"), (model, row.status, row.failure_reason)
                if reason:
                    assert reason in (row.failure_reason or ""), (model, row.failure_reason)
            assert rows["garbage"].inference_output_jsonb == {"p_up": "very likely"}  # raw kept
            if rows["huge"].status == "SUCCESS":
                assert rows["huge"].inference_output_jsonb == {"p_up": 0.25}
            assert rows["steady"].inference_output_jsonb == {"p_up": 0.5}
            assert rows["unencodable"].failure_reason  # the encoding error is explained

            async def restarted() -> bool:
                current = {e.model_id: e.deployment_id for e in client.known_models()}
                return all(
                    current.get(m) not in (None, deployments[m])
                    for m in ("crasher", "spinner", "hanger")
                ) and set(client.ready_model_ids()) >= {"crasher", "spinner", "hanger"}

            await wait_until(restarted, 60, "crashed and stuck models to come back")
            again = await service.run_cycle(config, datetime.now(UTC))
            assert again.counts.get("SUCCESS", 0) >= 3  # the good ones (and huge) still answer
        finally:
            await client.close()
    cgroups = PidsCgroups.detect()
    if cgroups is not None:  # the forker's cgroup went with it, children included
        assert not [d.name for d in cgroups.parent.iterdir() if d.name.startswith("forker")]
