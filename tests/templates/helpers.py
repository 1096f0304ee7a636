"""Shared helpers of the template tests: a tagged clone of this repository, renders,
subprocesses with a clean environment."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from crunch_engine.slots.spec import SlotName

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CRUNCH = VENV_BIN / "crunch"
NAME = "btc-trader"
PACKAGE = "crunch_btc_trader"
PACKS = ("baseline", "realtime", "tournament", "demo")

_SKIP = {
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".crunch",
    "test-artifacts",
    "node_modules",
    "dist",
    "build",
}
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "template tests",
    "GIT_AUTHOR_EMAIL": "tests@localhost",
    "GIT_COMMITTER_NAME": "template tests",
    "GIT_COMMITTER_EMAIL": "tests@localhost",
}


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without CRUNCH_* settings or slot overrides, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUNCH_")}
    for slot in SlotName:
        env.pop(slot.value, None)
    env.pop("PYTHONPATH", None)
    env.update(GIT_IDENTITY)
    env.update(extra)
    return env


def run(
    command: Sequence[str | Path],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} (in {cwd}) exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd).stdout.strip()


def make_template_repo(dst: Path, source: Path = REPO_ROOT, tag: str = "v1.0.0") -> Path:
    """This repository's working tree (uncommitted work included) as a fresh git repo
    with one commit tagged ``tag``: what `copier copy` sees in a real clone."""
    shutil.copytree(source, dst, ignore=lambda _dir, names: [n for n in names if n in _SKIP])
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "template", "--no-verify")
    git(dst, "tag", tag)
    return dst


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, "--no-verify")


def render(template: Path, dst: Path, vcs_ref: str = "v1.0.0", **data: Any) -> Path:
    """`copier copy --trust --defaults` of a workspace, in-process (its tasks run
    `python -m copier` for the two sub-projects)."""
    import copier

    answers = {"name": NAME, **data}
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CRUNCH_")}
    identity = {k: os.environ.get(k) for k in GIT_IDENTITY}
    os.environ.update(GIT_IDENTITY)
    try:
        copier.run_copy(
            str(template),
            dst,
            data=answers,
            defaults=True,
            vcs_ref=vcs_ref,
            unsafe=True,
            quiet=True,
        )
    finally:
        os.environ.update(saved)
        for key, value in identity.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return dst


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ", "=======")


def read_answers(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


def text_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if ".git" in path.parts or not path.is_file():
            continue
        yield path
