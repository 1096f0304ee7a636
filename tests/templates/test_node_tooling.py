"""The generated node's own tooling: its Makefile targets and its Docker files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from crunch_engine import __version__
from tests.templates.helpers import CRUNCH, NAME, clean_env, run
from tests.test_docker_files import check_compose, check_dockerfile, interpolate

NODE = f"crunch-node-{NAME}"
FAST_PYTEST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def test_node_makefile_targets(rendered: Callable[[str], Path]) -> None:
    """``make check`` and ``make test`` really run; the Docker and install targets
    expand to the commands the README documents (no daemon here, so ``make -n``)."""
    node = rendered("baseline") / NODE
    env = clean_env(**FAST_PYTEST, COLUMNS="200")
    bin_dir = CRUNCH.parent
    check = run(["make", "check", f"CRUNCH={CRUNCH}"], node, env=env)
    assert "configuration OK" in check.stdout
    tests = run(
        ["make", "test", f"BIN={bin_dir}", "PYTEST_ADDOPTS=-q -p no:cacheprovider"], node, env=env
    )
    assert " passed" in tests.stdout
    dry = run(["make", "-n", "install", "deploy", "down", "update"], node, env=env).stdout
    assert "-m venv .venv" in dry and "pip install -q -e" in dry
    assert "docker compose up -d --build" in dry
    assert "scripts/verify.py --url http://127.0.0.1:8000 --wait 180" in dry
    assert "docker compose down" in dry and "copier update --trust --defaults" in dry
    unreachable = run(
        ["make", "verify", "API=http://127.0.0.1:9", "WAIT=1"], node, env=env, check=False
    )
    assert unreachable.returncode != 0
    assert "127.0.0.1:9" in unreachable.stdout + unreachable.stderr


@pytest.mark.parametrize("pack", ["baseline"])
def test_node_docker_files(rendered: Callable[[str], Path], pack: str) -> None:
    """The node's Dockerfile and compose file pass the checks of this repository's own
    (tests/test_docker_files.py); the challenge is mounted where the image expects it."""
    node = rendered(pack) / NODE
    instructions = check_dockerfile(node / "Dockerfile", node)
    env = " ".join(i.arguments for i in instructions if i.keyword == "ENV")
    assert "CRUNCH_MODELS_DIR=/app/challenge/examples" in env
    compose = check_compose(node / "docker-compose.yml", "node")
    mounts = [interpolate(v) for v in compose["services"]["node"]["volumes"]]
    challenge_mount = next(m for m in mounts if ":/app/challenge" in m)
    assert (node / challenge_mount.split(":")[0] / "examples" / "models.yml").is_file()
    required = (node / "requirements.txt").read_text().split()
    assert f"crunch-control=={__version__}" in required
