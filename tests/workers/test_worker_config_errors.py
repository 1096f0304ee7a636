"""Real worker processes refuse a broken configuration: exit code 2 and a message that
names the slot, the file and line it came from, and what went wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CRUNCH = Path(sys.executable).with_name("crunch")


def run_worker(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUNCH_")}
    return subprocess.run(
        [str(CRUNCH), "worker", name],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("worker", "line", "expected"),
    [
        ("score", "no_such_pkg.scoring:score", "cannot import module 'no_such_pkg.scoring'"),
        ("predict", "json:no_such_attr", "module 'json' has no attribute 'no_such_attr'"),
    ],
)
def test_a_broken_slot_stops_the_worker_with_exit_2(
    tmp_path: Path, worker: str, line: str, expected: str
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "callables.env").write_text(f"# slots\nSCORING_FUNCTION={line}\n")
    result = run_worker(worker, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "SCORING_FUNCTION" in result.stderr
    assert "(from config/callables.env:2)" in result.stderr
    assert expected in result.stderr


def test_an_unmigrated_database_stops_the_worker_with_exit_2(tmp_path: Path) -> None:
    result = run_worker("market-data", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "run `crunch db upgrade`" in result.stderr


def test_a_misspelt_setting_stops_the_worker_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CRUNCH_SCORE_INTERVAL_SECOND=1\n")
    result = run_worker("score", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "CRUNCH_SCORE_INTERVAL_SECOND" in result.stderr
    assert "did you mean CRUNCH_SCORE_INTERVAL_SECONDS?" in result.stderr
