"""Fixtures of the template tests: a tagged clone of this repository and one rendered
workspace per pack (rendered once per session, on first use)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.templates.helpers import make_template_repo, render


@pytest.fixture(scope="session")
def template_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository's working tree as a git repo tagged v1.0.0 (not modified by tests)."""
    return make_template_repo(tmp_path_factory.mktemp("template") / "crunch-control")


@pytest.fixture(scope="session")
def template_plain(template_v1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same files without git (copier reads it in place: fast for prompt tests)."""
    target = tmp_path_factory.mktemp("template-plain") / "crunch-control"
    shutil.copytree(template_v1, target, ignore=shutil.ignore_patterns(".git"))
    return target


@pytest.fixture(scope="session")
def rendered(template_v1: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``rendered(pack)``: the workspace scaffolded with that pack and default answers."""
    cache: dict[str, Path] = {}

    def get(pack: str) -> Path:
        if pack not in cache:
            root = tmp_path_factory.mktemp(f"render-{pack}")
            cache[pack] = render(template_v1, root / "btc-trader", pack=pack)
        return cache[pack]

    return get
