"""Fast checks of the orchestrator's parts: models.yml validation, the directory watcher,
the scrubbed environment, limits, backoff, deployment ids, logs, state.json, reports."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crunch_engine.models.contracts import FailureCode
from crunch_engine.models.orchestrator import confine
from crunch_engine.models.orchestrator.config import (
    DesiredState,
    ModelsFileError,
    load_models_file,
    parse_models_file,
)
from crunch_engine.models.orchestrator.environment import (
    ResourceLimits,
    confined_argv,
    scrubbed_environment,
)
from crunch_engine.models.orchestrator.launcher import RotatingLog
from crunch_engine.models.orchestrator.process import RestartPolicy, deployment_stamp
from crunch_engine.models.orchestrator.publisher import parse_failure_reports
from crunch_engine.models.orchestrator.status import read_state, write_json_atomic
from crunch_engine.models.orchestrator.watcher import ModelsWatcher
from crunch_engine.settings import DEMO_MODELS_DIR


def models_dir_with(tmp_path: Path, text: str, folders: tuple[str, ...] = ("a", "b")) -> Path:
    for folder in folders:
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "main.py").write_text("x = 1\n")
    (tmp_path / "models.yml").write_text(text)
    return tmp_path


def test_demo_models_file_is_valid() -> None:
    config = load_models_file(DEMO_MODELS_DIR, "local")
    assert [m.id for m in config.models] == ["momentum", "mean-reversion", "noisy"]
    momentum = config.models[0]
    assert momentum.submission_dir == DEMO_MODELS_DIR / "momentum"
    assert momentum.identity.model_name == "Momentum" and momentum.identity.cruncher_id == "alice"
    assert all(m.desired_state is DesiredState.RUNNING for m in config.models)


def test_reference_spelling_and_other_crunches(tmp_path: Path) -> None:
    text = """
models:
  - {id: 1, name: one, submission_id: a, crunch_id: mine, desired_state: running}
  - {id: 2, name: two, submission_id: b, crunch_id: theirs, desired_state: STOPPED}
  - {id: 3, submission: b}
"""
    config = load_models_file(models_dir_with(tmp_path, text), "mine")
    assert [(m.id, m.name, m.desired_state) for m in config.models] == [
        ("1", "one", DesiredState.RUNNING),
        ("3", "3", DesiredState.RUNNING),
    ]
    assert config.skipped == ("2",)
    assert config.models[0].submission_dir == (tmp_path / "a").resolve()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n  - {id: m, submission: a, desired_state: MAYBE}\n",
            r"models\[0\]\.desired_state",
        ),
        (
            "models:\n  - {id: m, submission: a}\n  - {name: x, submission: a}\n",
            r"models\[1\]\.id: Field required",
        ),
        (
            "models:\n  - {id: m, submission: a, colour: red}\n",
            r"models\[0\]\.colour: Extra inputs",
        ),
        (
            "models:\n  - {id: m, submission: missing}\n",
            r"models\[0\]\.submission: folder 'missing' not found",
        ),
        (
            "models:\n  - {id: m, submission: ../outside}\n",
            r"models\[0\]\.submission: .* must be a folder inside",
        ),
        (
            "models:\n  - {id: m, submission: a}\n  - {id: m, submission: b}\n",
            r"models\[1\]\.id: 'm' already used by models\[0\]",
        ),
        (
            "models:\n  - {id: ../x, submission: a}\n",
            r"models\[0\]\.id: String should match pattern",
        ),
        ("models:\n  - {id: m, submission: a\n", r"line \d+ column \d+: not valid YAML"),
        ("models: {id: m}\n", r"`models` must be a list"),
        ("- {id: m}\n", r"expected a mapping with one key `models:`"),
        ("models:\n  - just-a-string\n", r"models\[0\]: expected a mapping"),
    ],
)
def test_errors_name_the_file_entry_and_field(tmp_path: Path, text: str, expected: str) -> None:
    models_dir = models_dir_with(tmp_path, text)
    with pytest.raises(ModelsFileError) as info:
        load_models_file(models_dir, "local")
    message = str(info.value)
    assert str(models_dir / "models.yml") in message
    assert re.search(expected, message), message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = "models:\n  - {id: a, submission: nope}\n  - {id: b, submission: a, desired_state: X}\n"
    with pytest.raises(ModelsFileError) as info:
        parse_models_file(tmp_path / "models.yml", text, "local")
    assert "models[0].submission" in str(info.value) and "models[1].desired_state" in str(
        info.value
    )


def test_empty_file_means_no_models(tmp_path: Path) -> None:
    assert load_models_file(models_dir_with(tmp_path, ""), "local").models == ()
    assert load_models_file(models_dir_with(tmp_path, "models:\n"), "local").models == ()


def test_watcher_reports_changes_and_keeps_the_last_good_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models_dir = models_dir_with(tmp_path, "models:\n  - {id: a, submission: a}\n")
    watcher = ModelsWatcher(models_dir, "local")
    first = watcher.poll()
    assert first is not None and [m.id for m in first.config.models] == ["a"]
    assert watcher.poll() is None, "nothing changed"

    (models_dir / "a" / "main.py").write_text("x = 2  # longer\n")
    changed = watcher.poll()
    assert changed is not None and changed.config_hash == first.config_hash
    assert changed.code_hashes["a"] != first.code_hashes["a"]

    (models_dir / "a" / "__pycache__").mkdir()
    (models_dir / "a" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"x")
    assert watcher.poll() is None, "bytecode is not a code change"

    (models_dir / "models.yml").write_text(
        "models:\n  - {id: a, submission: a}\n  - {id: c, submission: c}\n"
    )
    assert watcher.poll() is None and "models[1].submission" in (watcher.last_error or "")
    assert watcher.current is not None and [m.id for m in watcher.current.config.models] == ["a"]
    assert watcher.poll() is None
    assert sum("models[1].submission" in r.getMessage() for r in caplog.records) == 1, "logged once"

    (models_dir / "c").mkdir()  # the folder appears later: the same file becomes valid
    (models_dir / "c" / "main.py").write_text("y = 1\n")
    fixed = watcher.poll()
    assert fixed is not None and [m.id for m in fixed.config.models] == ["a", "c"]
    assert watcher.last_error is None


def test_watcher_without_models_file(tmp_path: Path) -> None:
    watcher = ModelsWatcher(tmp_path, "local")
    assert watcher.poll() is None
    assert watcher.last_error is not None and "not found" in watcher.last_error


def test_scrubbed_environment_is_an_allow_list(tmp_path: Path) -> None:
    parent = {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "en_US.UTF-8",
        "HOME": "/root",
        "CRUNCH_DATABASE_URL": "postgresql://u:secret@h/db",
        "AWS_ACCESS_KEY_ID": "x",
        "MY_TOKEN": "x",
        "PGPASSWORD": "x",
        "PYTHONPATH": "/somewhere/else",
        "VIRTUAL_ENV": "/work/.venv",
    }
    env = scrubbed_environment(tmp_path, parent=parent, pythonpath=["/engine"])
    assert env == {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "en_US.UTF-8",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",
        "PYTHONPATH": "/engine",
    }
    assert (tmp_path / "tmp").is_dir()
    assert "PYTHONPATH" not in scrubbed_environment(tmp_path, parent={}, pythonpath=[])
    assert scrubbed_environment(tmp_path, parent={}, pythonpath=[])["PATH"]


def test_resource_limits_zero_means_none() -> None:
    assert ResourceLimits().pairs() == []
    pairs = dict(ResourceLimits(memory_mb=10, open_files=20, processes=30).pairs())
    assert pairs == {
        resource.RLIMIT_AS: 10 * 2**20,
        resource.RLIMIT_NOFILE: 20,
        resource.RLIMIT_NPROC: 30,
    }


def test_backoff_doubles_to_the_cap() -> None:
    policy = RestartPolicy(initial_backoff_seconds=1.0, max_backoff_seconds=60.0)
    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_deployment_stamp_is_utc_with_milliseconds() -> None:
    moment = datetime(2025, 3, 4, 5, 6, 7, 89_000, tzinfo=UTC)
    assert deployment_stamp(moment) == "20250304_050607_089"


def test_rotating_log_caps_its_size(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "model.log", max_bytes=100, backups=2)
    for index in range(30):
        log.write(f"line {index:03d} {'x' * 20}\n".encode())
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["model.log", "model.log.1", "model.log.2"]
    assert all((tmp_path / name).stat().st_size <= 100 for name in files)
    assert "line 029" in (tmp_path / "model.log").read_text()
    assert list(log.tail)[-1].startswith("line 029")


def test_state_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator" / "state.json"
    write_json_atomic(path, {"a": 1})
    inode = path.stat().st_ino
    write_json_atomic(path, {"a": 2})
    assert read_state(path) == {"a": 2}
    assert path.stat().st_ino != inode, "rewritten in place instead of renamed"
    assert os.listdir(path.parent) == ["state.json"], "temporary file left behind"
    assert json.loads(path.read_text()) == {"a": 2}


def test_failure_reports_are_validated() -> None:
    reports, problems = parse_failure_reports(
        [
            {
                "model_id": "m",
                "failure_code": "BAD_IMPLEMENTATION",
                "failure_reason": "r",
                "ip": "1.2.3.4",
            },
            {"model_id": "n", "failure_code": "SOMETHING"},
            {"failure_code": "MULTIPLE_FAILED"},
        ]
    )
    assert [(r.model_id, r.failure_code, r.ip) for r in reports] == [
        ("m", FailureCode.BAD_IMPLEMENTATION, "1.2.3.4")
    ]
    assert len(problems) == 2 and "SOMETHING" in problems[0]
    assert parse_failure_reports({"model_id": "m"})[1] == ["`data` must be a list, got dict"]


def test_confine_sets_limits_then_execs_the_command() -> None:
    probe = (
        "import os, resource; "
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], "
        "resource.getrlimit(resource.RLIMIT_AS)[0], os.getppid())"
    )
    argv = confined_argv(
        ResourceLimits(memory_mb=900, open_files=77), [sys.executable, "-c", probe]
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    nofile, address_space, parent = done.stdout.split()
    assert (int(nofile), int(address_space), int(parent)) == (77, 900 * 2**20, os.getpid())


def test_confine_refuses_bad_arguments_and_orphaned_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no command"):
        confine.parse(["--limit", "7=10"])
    with pytest.raises(ValueError, match="unknown option"):
        confine.parse(["--nope", "1", "--", "true"])
    assert confine.parse(["--parent-pid", "5", "--", "a", "b"]) == ([], 5, ["a", "b"], {})
    # A parent pid that is not ours: the orchestrator "died" before the signal was armed.
    assert confine.main(["--parent-pid", str(os.getpid() + 999_999), "--", "/bin/true"]) == 127
    missing = str(tmp_path / "no-such-python")
    done = subprocess.run(
        [sys.executable, "-S", confine.__file__, "--", missing], capture_output=True, text=True
    )
    assert done.returncode == 127 and "cannot run" in done.stderr


def test_a_pids_cgroup_caps_a_fork_bomb_even_for_root() -> None:
    from crunch_engine.models.orchestrator.pids_cgroup import PidsCgroups

    cgroups = PidsCgroups.detect()
    if cgroups is None:
        pytest.skip("no writable pids cgroup controller on this machine")
    name = f"test-{os.getpid()}"
    bomb = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 500:\n"
        "        if os.fork() == 0:\n"
        "            os.close(1), os.close(2)\n"  # let subprocess.run see EOF
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except BlockingIOError:\n"
        "    print(n)\n"
    )
    argv = confined_argv(
        ResourceLimits(processes=8),
        [sys.executable, "-c", bomb],
        pids_cgroup=cgroups.path_for(name),
    )
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert int(done.stdout) < 8  # the 8th task (the bomb itself counts) was refused
    finally:
        cgroups.remove(name)
    assert not cgroups.path_for(name).exists()  # removed, sleeping children killed
