"""The `crunch` command run as a real subprocess, as a user would run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from crunch_engine import __version__


def crunch(
    cmd: list[str], env: dict, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cmd, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_version_and_help(crunch_cmd: list[str], crunch_env: dict) -> None:
    assert (
        crunch(crunch_cmd, crunch_env, "--version").stdout.strip()
        == f"crunch-control {__version__}"
    )
    help_text = crunch(crunch_cmd, crunch_env, "--help").stdout
    for group in ("db", "packs", "config"):
        assert group in help_text


def test_packs_list_json(crunch_cmd: list[str], crunch_env: dict) -> None:
    result = crunch(crunch_cmd, crunch_env, "packs", "list", "--json")
    assert result.returncode == 0, result.stderr
    packs = json.loads(result.stdout)
    assert [p["id"] for p in packs] == ["baseline", "demo", "realtime", "tournament"]
    assert {p["id"]: p["every_seconds"] for p in packs} == {
        "baseline": 60,
        "demo": 5,
        "realtime": 15,
        "tournament": 60,
    }
    assert all(set(p) == {"id", "description", "every_seconds"} for p in packs)


def test_packs_show(crunch_cmd: list[str], crunch_env: dict) -> None:
    result = crunch(crunch_cmd, crunch_env, "packs", "show", "tournament")
    assert result.returncode == 0, result.stderr
    assert "in-sample-btc-300s" in result.stdout and "GROUND_TRUTH_RESOLVER" in result.stdout
    missing = crunch(crunch_cmd, crunch_env, "packs", "show", "nope")
    assert (
        missing.returncode == 2
        and "known packs are baseline, demo, realtime, tournament" in missing.stderr
    )


@pytest.mark.parametrize("pack", ["baseline", "demo", "realtime", "tournament"])
def test_config_check_passes_for_each_pack(
    crunch_cmd: list[str], crunch_env: dict, pack: str, tmp_path: Path
) -> None:
    result = crunch(crunch_cmd, crunch_env, "config", "check", "--pack", pack, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration OK" in result.stdout
    assert result.stdout.count(f"pack {pack}") == 10


def test_config_check_reports_where_each_slot_came_from(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    node = tmp_path / "node"
    (node / "config").mkdir(parents=True)
    (node / "runtime_definitions").mkdir()
    (node / "runtime_definitions" / "__init__.py").write_text("")
    (node / "runtime_definitions" / "scoring.py").write_text(
        "def score(output, ground_truth):\n    return 0.0\n"
    )
    (node / "config" / "callables.env").write_text(
        "# node overrides\nSCORING_FUNCTION=runtime_definitions.scoring:score\n"
    )
    env = {
        **crunch_env,
        "LEADERBOARD_RANKER": "crunch_engine.slots.defaults:rank_by_primary_window",
    }
    result = crunch(crunch_cmd, env, "config", "check", cwd=node)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "config/callables.env:2" in result.stdout
    assert "env LEADERBOARD_RANKER" in result.stdout


def test_config_check_fails_for_a_broken_callable(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    env = {**crunch_env, "SCORING_FUNCTION": "runtime_definitions.scoring:typo"}
    result = crunch(crunch_cmd, env, "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "SCORING_FUNCTION=runtime_definitions.scoring:typo (from env SCORING_FUNCTION)"
        in result.stderr
    )
    assert "cannot import module 'runtime_definitions.scoring'" in result.stderr


def test_config_check_fails_for_an_unknown_slot_in_callables_env(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    (tmp_path / "callables.env").write_text("SCORING_FUNCTON=a.b:c\n")
    result = crunch(
        crunch_cmd, crunch_env, "config", "check", "--callables-file", "callables.env", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "callables.env:1: unknown slot 'SCORING_FUNCTON'" in result.stderr


def test_config_check_fails_for_a_broken_pack(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    (tmp_path / "pack.json").write_text('{"id": "broken", "description": "x", "callables": {}}')
    result = crunch(crunch_cmd, crunch_env, "config", "check", "--pack", "pack.json", cwd=tmp_path)
    assert result.returncode == 2
    assert "pack.json: invalid" in result.stderr
    assert "$.callables: Value error" not in result.stderr  # the message is cleaned up
    assert "missing: RAW_INPUT_PROVIDER" in result.stderr
    assert "$.scheduled_prediction_configs: Field required" in result.stderr


def test_config_check_fails_for_a_bad_spec(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    (tmp_path / "spec.json").write_text('{"checkpoint_interval_seconds": -5}')
    result = crunch(crunch_cmd, crunch_env, "config", "check", "--spec", "spec.json", cwd=tmp_path)
    assert result.returncode == 2
    assert "spec.json: invalid" in result.stderr
    assert "$.checkpoint_interval_seconds: Input should be greater than 0 (got -5)" in result.stderr


def test_config_check_fails_for_bad_settings(
    crunch_cmd: list[str], crunch_env: dict, tmp_path: Path
) -> None:
    env = {**crunch_env, "CRUNCH_LOG_LEVEL": "chatty"}
    result = crunch(crunch_cmd, env, "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "CRUNCH_LOG_LEVEL" in result.stderr
