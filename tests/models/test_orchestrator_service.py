"""The orchestrator in-process with real model-server subprocesses and a real WebSocket:
announcements, live models.yml changes, crash/watchdog/unhealthy restarts, failure
reports, the scrubbed environment and resource limits, and a clean shutdown.

The servers are ``python -m crunch_engine.models.server`` when that module exists, else
the stand-in of orchestrator_fixtures (same command line, real gRPC health)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from tests.models.orchestrator_fixtures.support import (
    CRUNCH_ID,
    INFOS_KEYS,
    MODEL_STATE_KEYS,
    SILENT_SERVER,
    SUBMISSIONS,
    call_hanging_method,
    copy_demo,
    deployment_pattern,
    entry,
    fast_policy,
    make_settings,
    model_servers,
    model_state,
    orchestrator_with_client,
    pid_gone,
    running_orchestrator,
    serving,
    state_of,
    wait_until,
    write_models,
    ws_client,
)

DEMO_INFOS = {
    "momentum": ("Momentum", "alice", "Alice"),
    "mean-reversion": ("Mean Reversion", "bob", "Bob"),
    "noisy": ("Noisy", "carol", "Carol"),
}


def one_model(tmp_path: Path, model_id: str = "momentum", submission: str = "momentum") -> Path:
    models_dir = copy_demo(tmp_path)
    write_models(models_dir, [entry(model_id, submission)])
    return models_dir


async def test_demo_fleet_is_announced_running_only_once_serving(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, copy_demo(tmp_path))
    async with running_orchestrator(settings) as orchestrator:
        port = orchestrator.publisher.port
        async with ws_client(port) as early:
            assert early.messages[0]["event"] == "init"
            assert set(early.messages[0]) == {"event", "data"}
            for model_id in DEMO_INFOS:
                state = await early.wait_running(model_id)
                # Announced RUNNING means answering SERVING now, without any retry.
                assert await serving(state["port"], seconds=1.0), state
            updates = early.states()
            assert all(s["state"] == "RUNNING" for s in updates), updates
            for state in updates:
                assert set(state) == MODEL_STATE_KEYS
                assert set(state["infos"]) == INFOS_KEYS
                name, cruncher_id, cruncher_name = DEMO_INFOS[state["model_id"]]
                assert state["infos"] == {
                    "model_name": name,
                    "cruncher_id": cruncher_id,
                    "cruncher_name": cruncher_name,
                    "cruncher_wallet_pubkey": "",
                    "cruncher_hotkey": "",
                }
                assert state["ip"] == "127.0.0.1"
                assert isinstance(state["port"], int) and state["port"] > 0
                assert deployment_pattern(state["model_id"]).match(state["deployment_id"])
            assert len({s["port"] for s in updates}) == 3

            async with ws_client(port) as late:
                init = late.messages[0]
                assert init["event"] == "init"
                by_id = {s["model_id"]: s for s in init["data"]}
                assert by_id == {s["model_id"]: s for s in updates}

        state = state_of(settings)
        assert state["crunch_id"] == CRUNCH_ID and state["running"] is True
        assert state["websocket_url"] == f"ws://127.0.0.1:{port}/{CRUNCH_ID}"
        for model in state["models"]:
            announced = by_id[model["id"]]
            assert model["state"] == "RUNNING" and model["wire_state"] == "RUNNING"
            assert model["deployment_id"] == announced["deployment_id"]
            assert model["port"] == announced["port"]
            assert psutil.pid_exists(model["pid"])
            assert datetime.fromisoformat(model["started_at"]).utcoffset() is not None
            workdir = settings.resolved_data_dir / "models" / model["id"]
            assert model["log"] == str(workdir / "model.log")
            assert await asyncio.to_thread(os.path.getsize, model["log"]) > 0
            assert psutil.Process(model["pid"]).cwd() == str(workdir)
            assert model["restarts"] == 0 and model["last_error"] is None

    state = state_of(settings)
    assert state["running"] is False
    assert {m["state"] for m in state["models"]} == {"STOPPED"}


async def test_models_yml_changes_take_effect_without_restart(tmp_path: Path) -> None:
    models_dir = one_model(tmp_path)
    settings = make_settings(tmp_path, models_dir)
    async with orchestrator_with_client(settings) as (_, client):
        momentum = await client.wait_running("momentum")
        pid = model_state(settings, "momentum")["pid"]

        write_models(models_dir, [entry("momentum", "momentum"), entry("noisy", "noisy")])
        noisy = await client.wait_running("noisy")
        assert deployment_pattern("noisy").match(noisy["deployment_id"])
        assert model_state(settings, "momentum")["pid"] == pid, "untouched model restarted"

        write_models(
            models_dir, [entry("momentum", "momentum", "STOPPED"), entry("noisy", "noisy")]
        )
        await client.wait_state("momentum", momentum["deployment_id"], "STOPPED")
        await wait_until(lambda: pid_gone(pid), 10, "the stopped model's process to exit")
        # STOPPED is announced before the process is signalled; the final state follows.
        await wait_until(
            lambda: model_state(settings, "momentum")["state"] == "STOPPED", 10, "STOPPED"
        )
        stopped = model_state(settings, "momentum")
        assert stopped["state"] == "STOPPED" and stopped["pid"] is None
        assert stopped["desired_state"] == "STOPPED"
        assert [s["model_id"] for s in client.states() if s["state"] == "STOPPED"] == ["momentum"]

        # Editing a submission's code restarts that model with a new deployment.
        (models_dir / "noisy" / "main.py").write_text(
            (models_dir / "noisy" / "main.py").read_text() + "\n# edited\n"
        )
        await client.wait_state("noisy", noisy["deployment_id"], "STOPPED")
        again = await client.wait_running("noisy", count=2)
        assert again["deployment_id"] != noisy["deployment_id"]


async def test_killed_model_is_restarted_with_a_new_deployment(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, one_model(tmp_path))
    async with orchestrator_with_client(settings) as (_, client):
        first = await client.wait_running("momentum")
        pid = model_state(settings, "momentum")["pid"]
        os.kill(pid, signal.SIGKILL)
        await client.wait_state("momentum", first["deployment_id"], "STOPPED")
        second = await client.wait_running("momentum", count=2)
        assert second["deployment_id"] != first["deployment_id"]
        assert deployment_pattern("momentum").match(second["deployment_id"])
        state = model_state(settings, "momentum")
        assert state["restarts"] == 1
        assert state["last_exit_code"] == -signal.SIGKILL
        assert "exited with code -9" in state["last_error"]
        assert state["pid"] != pid and psutil.pid_exists(state["pid"])


async def test_watchdog_exit_86_is_restarted(tmp_path: Path) -> None:
    models_dir = copy_demo(tmp_path)
    shutil.copytree(SUBMISSIONS / "hanging", models_dir / "hanging")
    write_models(models_dir, [entry("hanging", "hanging")])
    settings = make_settings(tmp_path, models_dir, model_hard_limit_seconds=1.0)
    async with orchestrator_with_client(settings) as (_, client):
        first = await client.wait_running("hanging")
        await call_hanging_method(first["port"], settings.model_base_class)
        await client.wait_state("hanging", first["deployment_id"], "STOPPED", seconds=15)
        second = await client.wait_running("hanging", count=2)
        assert second["deployment_id"] != first["deployment_id"]
        state = model_state(settings, "hanging")
        assert state["last_exit_code"] == 86
        assert state["last_error"].startswith("watchdog")


async def test_unresponsive_model_is_killed_and_restarted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, one_model(tmp_path))
    policy = fast_policy(unhealthy_limit_seconds=1.0, kill_grace_seconds=0.5)
    async with orchestrator_with_client(settings, policy=policy) as (_, client):
        first = await client.wait_running("momentum")
        pid = model_state(settings, "momentum")["pid"]
        os.kill(pid, signal.SIGSTOP)  # alive, port open, answers nothing
        try:
            await client.wait_state("momentum", first["deployment_id"], "STOPPED", seconds=10)
        finally:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGCONT)
        second = await client.wait_running("momentum", count=2)
        assert second["deployment_id"] != first["deployment_id"]
        assert pid_gone(pid)
        assert "unhealthy for" in model_state(settings, "momentum")["last_error"]


async def test_never_announced_while_health_does_not_answer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, one_model(tmp_path))
    policy = fast_policy(startup_timeout_seconds=1.0, kill_grace_seconds=0.5)
    entry_point = (str(SILENT_SERVER),)
    async with orchestrator_with_client(settings, policy=policy, entry_point=entry_point) as (
        _,
        client,
    ):
        await wait_until(
            lambda: model_state(settings, "momentum")["restarts"] >= 1, 10, "a restart"
        )
        state = model_state(settings, "momentum")
        assert "not healthy within 1s" in state["last_error"]
        assert client.messages[0] == {"event": "init", "data": []}
        assert client.states() == [], "announced a model whose health never answered"


async def test_failure_reports(tmp_path: Path) -> None:
    models_dir = copy_demo(tmp_path)
    write_models(models_dir, [entry("momentum", "momentum"), entry("noisy", "noisy")])
    settings = make_settings(tmp_path, models_dir)
    async with orchestrator_with_client(settings) as (_, client):
        momentum = await client.wait_running("momentum")
        noisy = await client.wait_running("noisy")
        pid = model_state(settings, "momentum")["pid"]

        def report(model_id: str, code: str) -> dict:
            item = {"model_id": model_id, "failure_code": code, "failure_reason": "x"}
            return {"event": "report_failure", "data": [{**item, "ip": "127.0.0.1"}]}

        await client.send(report("noisy", "MULTIPLE_TIMEOUT"))
        await client.wait_state("noisy", noisy["deployment_id"], "STOPPED")
        restarted = await client.wait_running("noisy", count=2)
        assert restarted["deployment_id"] != noisy["deployment_id"]

        await client.send(report("momentum", "BAD_IMPLEMENTATION"))
        await client.wait_state("momentum", momentum["deployment_id"], "STOPPED")
        await wait_until(lambda: pid_gone(pid), 10, "the reported model to exit")
        await wait_until(
            lambda: model_state(settings, "momentum")["state"] == "DISABLED", 10, "DISABLED"
        )
        await asyncio.sleep(1.0)  # several polls: it must stay stopped
        state = model_state(settings, "momentum")
        assert state["state"] == "DISABLED" and state["pid"] is None
        assert "BAD_IMPLEMENTATION" in state["last_error"]
        assert len(client.running("momentum")) == 1

        # A changed models.yml gives it another chance.
        yml = models_dir / "models.yml"
        yml.write_text(yml.read_text() + "\n# fixed\n")
        again = await client.wait_running("momentum", count=2)
        assert again["deployment_id"] != momentum["deployment_id"]


async def test_wrong_crunch_id_gets_an_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, one_model(tmp_path))
    async with running_orchestrator(settings) as orchestrator:
        port = orchestrator.publisher.port
        for path in ("/another-crunch", "/"):
            async with ws_client(port, path) as client:
                await wait_until(lambda c=client: c.task.done(), 5, "the server to close")
                assert len(client.messages) == 1
                assert set(client.messages[0]) == {"error"}
                assert client.messages[0]["error"]
        assert orchestrator.publisher.clients == 0


async def test_broken_models_yml_keeps_the_last_good_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models_dir = one_model(tmp_path)
    settings = make_settings(tmp_path, models_dir)
    caplog.set_level(logging.ERROR, logger="crunch_engine.models.orchestrator")
    async with orchestrator_with_client(settings) as (_, client):
        await client.wait_running("momentum")
        pid = model_state(settings, "momentum")["pid"]
        write_models(models_dir, [entry("momentum", "momentum", state="SOMETIMES")])
        await wait_until(lambda: state_of(settings)["config_error"], 10, "config_error")
        reason = state_of(settings)["config_error"]
        assert "models[0].desired_state" in reason and "models.yml" in reason
        assert any("models[0].desired_state" in r.getMessage() for r in caplog.records)
        await asyncio.sleep(0.6)
        assert model_state(settings, "momentum")["pid"] == pid
        assert client.states() == client.running("momentum")  # nothing stopped

        write_models(models_dir, [entry("momentum", "momentum")])
        await wait_until(lambda: state_of(settings)["config_error"] is None, 10, "recovery")
        assert model_state(settings, "momentum")["pid"] == pid


async def test_scrubbed_environment_and_resource_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "CRUNCH_DATABASE_URL": "postgresql://u:p@h/db",
        "AWS_SECRET_ACCESS_KEY": "a",
        "OPENAI_API_KEY": "b",
        "GITHUB_TOKEN": "c",
        "PGPASSWORD": "d",
        "DATABASE_URL": "e",
        "SOME_SECRET": "f",
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    settings = make_settings(
        tmp_path,
        one_model(tmp_path),
        model_memory_limit_mb=700,
        model_max_open_files=200,
        model_max_processes=50,
    )
    async with orchestrator_with_client(settings) as (_, client):
        await client.wait_running("momentum")
        process = psutil.Process(model_state(settings, "momentum")["pid"])
        env = process.environ()
        workdir = settings.resolved_data_dir / "models" / "momentum"
        assert not set(secrets) & set(env)
        assert not [k for k in env if k.startswith("CRUNCH_")]
        assert env["HOME"] == str(workdir)
        assert env["TMPDIR"] == str(workdir / "tmp")
        assert env["PYTHONUNBUFFERED"] == "1"
        assert set(env) <= {
                "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR", "PYTHONPATH",
                "PYTHONUNBUFFERED", "PYTHONNOUSERSITE", "PYTHONDONTWRITEBYTECODE",
                "MALLOC_ARENA_MAX",
            }  # fmt: skip
        assert process.rlimit(psutil.RLIMIT_AS) == (700 * 2**20, 700 * 2**20)
        assert process.rlimit(psutil.RLIMIT_NOFILE) == (200, 200)
        assert process.rlimit(psutil.RLIMIT_NPROC) == (50, 50)
        assert os.getpgid(process.pid) == process.pid, "not its own process group"
        assert model_servers(settings.models_dir) == [process]
