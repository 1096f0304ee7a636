"""`copier update` round trip: a new template version arrives, the user's edits stay."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from crunch_engine import __version__
from tests.templates.helpers import (
    CONFLICT_MARKERS,
    CRUNCH,
    NAME,
    PACKAGE,
    clean_env,
    commit_all,
    git,
    make_template_repo,
    read_answers,
    run,
    text_files,
)

CHALLENGE = f"crunch-{NAME}"
NODE = f"crunch-node-{NAME}"
FAST_PYTEST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}


# -- copier update -----------------------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.slow
def test_update_brings_the_new_version_and_keeps_user_edits(tmp_path: Path) -> None:
    """The user's commands: `copier copy --trust` (relative template path), edits and
    commits in each repo, then `copier update --trust --defaults` in the workspace, the
    challenge and the node after the template moved to v2.0.0."""
    template = make_template_repo(tmp_path / "crunch-control")
    copier_cli = [sys.executable, "-m", "copier"]
    run(
        [
            *copier_cli,
            *("copy", "--trust", "--defaults", "-r", "v1.0.0"),
            *("--data", f"name={NAME}", "--data", "pack=realtime"),
            *("crunch-control", NAME),
        ],
        tmp_path,
    )
    workspace = tmp_path / NAME
    challenge, node = workspace / CHALLENGE, workspace / NODE
    assert read_answers(workspace)["_src_path"] == str(template)  # made absolute

    # The user's edits, committed.
    user_scoring = "\n\ndef user_metric(scores):\n    return max(scores)  # user edit\n"
    with (challenge / PACKAGE / "scoring.py").open("a") as handle:
        handle.write(user_scoring)
    _edit(
        node / "runtime_definitions" / "validation.py",
        "    return defaults.validate_up_probability(output=output)",
        "    checked = defaults.validate_up_probability(output=output)  # user edit\n"
        "    return checked",
    )
    _edit(node / ".local.env", "CRUNCH_API_PORT=8000", "CRUNCH_API_PORT=8111")
    commit_all(challenge, "user: a metric")
    commit_all(node, "user: validation, port")

    # The template moves on: v2.0.0 changes files the user also edited (elsewhere in
    # them), adds a line to each SKILL.md and bumps the engine version.
    tpl = template / "copier-template"
    _edit(
        tpl / "challenge" / "{{ package_name }}" / "scoring.py",
        '"""How predictions are scored:',
        '"""Template v2. How predictions are scored:',
    )
    _edit(
        tpl / "node" / "runtime_definitions" / "validation.py",
        '"""Checking model answers',
        '"""Template v2. Checking model answers',
    )
    for kind in ("workspace", "challenge", "node"):
        with (tpl / kind / "SKILL.md.jinja").open("a") as handle:
            handle.write("\nTemplate v2 of the {{ repo_kind }} guide.\n")
    _edit(template / "crunch_engine" / "__init__.py", f'"{__version__}"', '"9.9.9"')
    commit_all(template, "template v2")
    git(template, "tag", "v2.0.0")

    for project in (workspace, challenge, node):  # the workspace first: the others log there
        run([*copier_cli, "update", "--trust", "--defaults"], project)

    for project, kind in ((workspace, "workspace"), (challenge, "challenge"), (node, "node")):
        assert read_answers(project)["_commit"] == "v2.0.0", kind
        assert f"Template v2 of the {kind} guide." in (project / "SKILL.md").read_text()
        for path in text_files(project):
            assert path.suffix != ".rej", path
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            assert not [line for line in lines if line.startswith(CONFLICT_MARKERS)], path
    scoring = (challenge / PACKAGE / "scoring.py").read_text()
    assert scoring.startswith('"""Template v2. How predictions are scored:')
    assert "return max(scores)  # user edit" in scoring
    validation = (node / "runtime_definitions" / "validation.py").read_text()
    assert validation.startswith('"""Template v2. Checking model answers')
    assert "# user edit" in validation
    assert "CRUNCH_API_PORT=8111" in (node / ".local.env").read_text()
    assert "crunch-control==9.9.9" in (node / "requirements.txt").read_text()

    steps = [
        (r["repo"], r["step"])
        for r in map(json.loads, (workspace / "process-log.jsonl").read_text().splitlines())
    ]
    for kind in ("workspace", "challenge", "node"):
        assert steps.count((kind, "update")) == 1, (kind, steps)

    # Still working after the update.
    run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        challenge,
        env=clean_env(**FAST_PYTEST),
    )
    assert "configuration OK" in run([CRUNCH, "config", "check"], node).stdout
    shutil.rmtree(template)
