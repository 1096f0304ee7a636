"""Submissions with a requirements.txt run in a venv built once per distinct requirements
(pip from PyPI: network needed), with their pins winning over the engine's packages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from crunch_engine.models.orchestrator.venvs import requirements_hash
from tests.models.orchestrator_fixtures.support import (
    copy_demo,
    entry,
    make_settings,
    model_state,
    orchestrator_with_client,
    wait_until,
    write_models,
)

pytestmark = pytest.mark.slow

PINNED_SIX = "1.16.0"  # the engine's own environment has another version of six


async def test_models_share_one_venv_and_a_broken_one_is_not_started(tmp_path: Path) -> None:
    models_dir = copy_demo(tmp_path)
    for folder in ("momentum", "noisy"):
        (models_dir / folder / "requirements.txt").write_text(f"six=={PINNED_SIX}\n")
    (models_dir / "mean_reversion" / "requirements.txt").write_text("this is not a requirement!\n")
    write_models(
        models_dir,
        [entry("momentum", "momentum"), entry("noisy", "noisy"), entry("broken", "mean_reversion")],
    )
    settings = make_settings(tmp_path, models_dir)
    async with orchestrator_with_client(settings) as (orchestrator, client):
        await client.wait_running("momentum", seconds=180)
        await client.wait_running("noisy", seconds=30)
        await wait_until(
            lambda: model_state(settings, "broken")["state"] == "FAILED", 60, "broken FAILED"
        )
        assert orchestrator.venvs is not None and orchestrator.venvs.builds == 1

        venv = (
            settings.resolved_data_dir
            / "venvs"
            / requirements_hash(models_dir / "noisy" / "requirements.txt")
        )
        python = venv / "bin" / "python"
        for model_id in ("momentum", "noisy"):
            state = model_state(settings, model_id)
            assert state["python"] == str(python)
            assert psutil.Process(state["pid"]).cmdline()[0] == str(python)

        probe = "import six, crunch_engine.models.server; print(six.__version__)"
        probing = await asyncio.create_subprocess_exec(
            str(python), "-c", probe, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(probing.communicate(), 30)
        assert probing.returncode == 0
        assert out.decode().strip() == PINNED_SIX

        broken = model_state(settings, "broken")
        assert broken["pid"] is None and broken["deployment_id"] is None
        assert "venv build failed" in broken["last_error"]
        assert "not a requirement" in broken["last_error"], "pip's own message is kept"
        assert client.states("broken") == []


async def test_stopping_during_the_build_kills_pip_and_leaves_no_half_venv(tmp_path: Path) -> None:
    models_dir = copy_demo(tmp_path)
    requirements = models_dir / "noisy" / "requirements.txt"
    requirements.write_text("six==1.15.0\n")
    write_models(models_dir, [entry("noisy", "noisy")])
    settings = make_settings(tmp_path, models_dir)
    venv = settings.resolved_data_dir / "venvs" / requirements_hash(requirements)
    async with orchestrator_with_client(settings) as (_, client):
        await wait_until(
            lambda: model_state(settings, "noisy")["state"] == "BUILDING", 10, "BUILDING"
        )
        await wait_until(lambda: venv.is_dir(), 10, "the venv folder")
        write_models(models_dir, [entry("noisy", "noisy", "STOPPED")])
        await wait_until(
            lambda: model_state(settings, "noisy")["state"] == "STOPPED", 20, "STOPPED"
        )
        builders = [
            p
            for p in psutil.Process().children(recursive=True)
            if str(venv) in " ".join(p.cmdline())
        ]
        assert not builders, f"build processes survived: {builders}"
        assert not venv.exists(), "a half-built venv was left behind"
        assert client.states("noisy") == []
