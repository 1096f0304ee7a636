"""The copier template (copier.yml + copier-template/): render every pack from a tagged
clone of this repository, run what was generated (the challenge's tests, the node's
config check and tests, the node itself), refuse bad answers, and update a scaffolded
workspace to a new template version while keeping the user's edits."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import sysconfig
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from crunch_engine import __version__
from crunch_engine.packs.loader import load_pack_data
from crunch_engine.scoring import rules
from crunch_engine.slots import defaults
from tests.templates.helpers import (
    CRUNCH,
    NAME,
    PACKAGE,
    PACKS,
    REPO_ROOT,
    VENV_BIN,
    clean_env,
    free_port,
    git,
    read_answers,
    run,
    text_files,
)

CHALLENGE = f"crunch-{NAME}"
NODE = f"crunch-node-{NAME}"
RUFF = VENV_BIN / "ruff"
EXAMPLE_MODELS = {"momentum", "mean-reversion", "base-rate"}
FAST_PYTEST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}


# -- the template itself -------------------------------------------------------------------


def test_copier_yml_renders_three_kinds_from_templated_subdirectory() -> None:
    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text(encoding="utf-8"))
    assert config["_subdirectory"] == "copier-template/{{ repo_kind }}"
    assert config["repo_kind"]["choices"] == ["workspace", "challenge", "node"]
    assert set(config["pack"]["choices"]) == set(PACKS)
    for question in ("name", "pack", "assets", "feed_provider", "horizon_seconds"):
        assert config[question].get("validator"), question
        assert config[question].get("help"), question
    for kind in ("workspace", "challenge", "node"):
        answers = REPO_ROOT / "copier-template" / kind / "{{ _copier_conf.answers_file }}.jinja"
        assert "_copier_answers" in answers.read_text(encoding="utf-8")
    # Every built-in pack is offered, and nothing else.
    assert set(config["pack"]["choices"]) == {
        p.name for p in (REPO_ROOT / "packs").iterdir() if (p / "pack.json").is_file()
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "BTC_Trader"}, "is not a slug"),
        ({"name": "btc--trader"}, "is not a slug"),
        ({"name": "crunch-btc"}, "leave out"),
        ({"name": NAME, "pack": "fastest"}, "pack"),
        ({"name": NAME, "assets": "ETH"}, "replay feed only has BTC and ADA"),
        ({"name": NAME, "assets": "btc"}, "uppercase tickers"),
        ({"name": NAME, "pack": "tournament", "assets": "BTC"}, "at least two"),
        ({"name": NAME, "interval_seconds": 900}, "must not exceed the horizon"),
        ({"name": NAME, "package_name": "crunch-btc"}, "not a valid package name"),
    ],
)
def test_bad_answers_are_refused_with_the_reason(
    template_plain: Path, tmp_path: Path, data: dict, message: str
) -> None:
    import copier

    with pytest.raises(ValueError, match=message):
        copier.run_copy(
            str(template_plain),
            tmp_path / "ws",
            data=data,
            defaults=True,
            unsafe=True,
            quiet=True,
            pretend=True,
        )
    assert not (tmp_path / "ws").exists()


# -- what a copy produces --------------------------------------------------------------------


@pytest.mark.parametrize("pack", PACKS)
def test_workspace_holds_two_committed_repos(rendered: Callable[[str], Path], pack: str) -> None:
    workspace = rendered(pack)
    challenge, node = workspace / CHALLENGE, workspace / NODE
    for path in (
        "SKILL.md",
        "README.md",
        "Makefile",
        "process-log.jsonl",
        f"{CHALLENGE}/SKILL.md",
        f"{CHALLENGE}/pyproject.toml",
        f"{CHALLENGE}/{PACKAGE}/tracker.py",
        f"{CHALLENGE}/{PACKAGE}/scoring.py",
        f"{CHALLENGE}/{PACKAGE}/evaluate.py",
        f"{CHALLENGE}/{PACKAGE}/data/candles.csv",
        f"{CHALLENGE}/{PACKAGE}/data/LICENSE-tradetropy.txt",
        f"{CHALLENGE}/schemas/inference_input.schema.json",
        f"{CHALLENGE}/schemas/scope.schema.json",
        f"{CHALLENGE}/schemas/prediction_output.schema.json",
        f"{CHALLENGE}/examples/models.yml",
        f"{NODE}/SKILL.md",
        f"{NODE}/RUNBOOK.md",
        f"{NODE}/Makefile",
        f"{NODE}/Dockerfile",
        f"{NODE}/docker-compose.yml",
        f"{NODE}/.local.env",
        f"{NODE}/requirements.txt",
        f"{NODE}/config/callables.env",
        f"{NODE}/config/pack.json",
        f"{NODE}/config/scheduled_prediction_configs.json",
        f"{NODE}/scripts/verify.py",
    ):
        assert (workspace / path).is_file(), path
    for module in ("data", "inference", "validation", "scoring", "reporting"):
        assert (node / "runtime_definitions" / f"{module}.py").is_file()
    examples = [p for p in (challenge / "examples").iterdir() if (p / "main.py").is_file()]
    assert len(examples) >= 2

    # Three git repositories, each committed and clean, each with its own answers.
    for project, kind in ((workspace, "workspace"), (challenge, "challenge"), (node, "node")):
        assert (project / ".git").is_dir(), kind
        assert git(project, "status", "--porcelain") == "", kind
        assert git(project, "log", "--format=%s") == f"Scaffold {kind} from crunch-control v1.0.0"
        answers = read_answers(project)
        assert answers["repo_kind"] == kind
        assert answers["pack"] == pack
        assert answers["_commit"] == "v1.0.0"
        assert Path(answers["_src_path"]).is_absolute()
    assert sorted(git(workspace, "ls-files").splitlines()) == [
        ".copier-answers.yml",
        ".gitignore",
        "Makefile",
        "README.md",
        "SKILL.md",
        "process-log.jsonl",
    ]
    # Nothing of the template repository itself leaks into a project.
    for project in (workspace, challenge, node):
        for leak in ("crunch_engine", "copier.yml", "copier-template", "packs", ".venv"):
            assert not (project / leak).exists(), (project.name, leak)
        assert not [p for p in text_files(project) if p.suffix == ".jinja"]

    # The audit trail: one JSON object per line, every step timestamped.
    records = [
        json.loads(line) for line in (workspace / "process-log.jsonl").read_text().splitlines()
    ]
    steps = [(r["repo"], r["step"]) for r in records]
    assert steps[0] == ("workspace", "copy")
    for kind in ("challenge", "node"):
        assert (kind, "copy") in steps and (kind, "git-commit") in steps
    assert steps[-1] == ("workspace", "git-commit")
    assert all(r["ts"].endswith("+00:00") for r in records)


@pytest.mark.parametrize("pack", PACKS)
def test_node_pack_is_the_chosen_engine_pack(rendered: Callable[[str], Path], pack: str) -> None:
    """With default answers the node's pack.json schedules exactly what the built-in pack
    does; its slots are wired to runtime_definitions; settings point at the challenge."""
    node = rendered(pack) / NODE
    ours = json.loads((node / "config" / "pack.json").read_text(encoding="utf-8"))
    _, builtin = load_pack_data(pack)
    assert ours["id"] == NAME
    assert ours["scheduled_prediction_configs"] == builtin["scheduled_prediction_configs"]
    assert ours["scoring"] == builtin["scoring"]
    assert ours["callables"] == builtin["callables"]
    assert ours["checkpoint_interval_seconds"] == builtin["checkpoint_interval_seconds"]

    callables = dict(
        line.split("=", 1)
        for line in (node / "config" / "callables.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(callables) == set(builtin["callables"])
    assert all(path.startswith("runtime_definitions.") for path in callables.values())

    settings = dict(
        line.split("=", 1)
        for line in (node / ".local.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert settings["CRUNCH_PACK"] == "config/pack.json"
    assert settings["CRUNCH_FEED_PROVIDER"] == "replay"
    assert settings["CRUNCH_MODELS_DIR"] == f"../{CHALLENGE}/examples"
    assert settings["CRUNCH_MODEL_BASE_CLASS"] == f"{PACKAGE}.tracker.TrackerBase"
    assets = {
        scope["scope_template"].get("asset") for scope in builtin["scheduled_prediction_configs"]
    }
    assert set(settings["CRUNCH_FEED_ASSETS"].split(",")) == assets
    assert (node / "requirements.txt").read_text().count(f"crunch-control=={__version__}") == 1


def test_bundled_candles_are_a_slice_of_the_engine_data(rendered: Callable[[str], Path]) -> None:
    data = rendered("tournament") / CHALLENGE / PACKAGE / "data"
    rows = list(csv.DictReader((data / "candles.csv").read_text().splitlines()))
    engine_data = REPO_ROOT / "crunch_engine" / "feeds" / "data"
    for asset in ("BTC", "ADA"):
        ours = [r for r in rows if r["asset"] == asset]
        source = list(
            csv.DictReader((engine_data / f"{asset}USDT_1m.csv").read_text().splitlines())
        )
        assert 100 <= len(ours) < len(source)
        for mine, theirs in zip(ours, source, strict=False):
            assert {k: mine[k] for k in ("ts_ms", "open", "high", "low", "close", "volume")} == {
                k: theirs[k] for k in ("ts_ms", "open", "high", "low", "close", "volume")
            }
    licence = (data / "LICENSE-tradetropy.txt").read_text()
    assert "MIT License" in licence and "michiTrader" in licence


def test_challenge_scoring_is_the_node_rule(rendered: Callable[[str], Path]) -> None:
    """The public scoring.py (pure Python) agrees with the engine's Brier and validator."""
    challenge = rendered("baseline") / CHALLENGE
    sys.path.insert(0, str(challenge))
    try:
        from crunch_btc_trader import scoring  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(challenge))
    for p in (0.0, 0.05, 0.5, 0.77, 1.0):
        for up in (True, False):
            assert scoring.score({"p_up": p}, {"up": up}) == pytest.approx(rules.brier(p, up))
            assert scoring.validate({"p_up": p}) == defaults.validate_up_probability(
                output={"p_up": p}
            )
    for bad in ({"p_up": 2}, {"p_up": None}, [], {"x": 1}):
        with pytest.raises(ValueError):
            scoring.validate(bad)
        with pytest.raises(ValueError):
            defaults.validate_up_probability(output=bad)
    assert rules.RULES["brier"].upper == scoring.WORST_SCORE


# -- running what was generated ---------------------------------------------------------------


@pytest.mark.parametrize("pack", PACKS)
def test_challenge_tests_pass_and_a_model_evaluates(
    rendered: Callable[[str], Path], pack: str
) -> None:
    challenge = rendered(pack) / CHALLENGE
    env = clean_env(**FAST_PYTEST)
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], challenge, env=env
    )
    assert " passed" in result.stdout
    evaluated = run(
        [sys.executable, "-m", f"{PACKAGE}.evaluate", "examples/base_rate", "--json"],
        challenge,
        env=env,
    )
    report = json.loads(evaluated.stdout)
    assert report["rounds"] > 10 and 0 <= report["mean_score"] < 1
    assert {s["asset"] for s in report["scopes"]} == (
        {"BTC", "ADA"} if pack == "tournament" else {"BTC"}
    )


@pytest.mark.parametrize("pack", PACKS)
def test_node_config_check_and_tests_pass(rendered: Callable[[str], Path], pack: str) -> None:
    node = rendered(pack) / NODE
    check = run([CRUNCH, "config", "check"], node, env=clean_env(COLUMNS="200"))
    assert "configuration OK" in check.stdout
    assert check.stdout.count("config/callables.env") >= 10
    assert "(from config/scheduled_prediction_configs.json)" in check.stdout
    tests = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        node,
        env=clean_env(**FAST_PYTEST),
    )
    assert " passed" in tests.stdout and "skipped" not in tests.stdout


@pytest.mark.parametrize("pack", ["baseline", "tournament"])
def test_generated_python_is_ruff_clean(rendered: Callable[[str], Path], pack: str) -> None:
    if not RUFF.exists():
        pytest.skip("ruff is not installed")
    for repo in (CHALLENGE, NODE):
        project = rendered(pack) / repo
        run([RUFF, "check", "--no-cache", "."], project)
        run([RUFF, "format", "--check", "--no-cache", "."], project)


def _serve_available() -> bool:
    result = subprocess.run(
        [str(CRUNCH), "serve", "--help"], capture_output=True, text=True, env=clean_env()
    )
    return result.returncode == 0


def _python_with_challenge(root: Path, challenge: Path) -> Path:
    """A virtual environment that sees the engine's packages and the challenge package
    (what `pip install -e ../crunch-<name>` does: a .pth line), without pip or network:
    model processes run with a scrubbed environment, so PYTHONPATH would not reach them."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    engine_site = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "crunch-test.pth").write_text(
        f"import site; site.addsitedir({engine_site!r})\n{challenge}\n", encoding="utf-8"
    )
    return python


@pytest.mark.slow
def test_node_serves_the_challenge_examples_offline(
    rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    """`crunch serve` in the generated node (demo pack: a round every 5 s, horizon 30 s)
    runs the challenge's example models on the replay feed until each is ranked."""
    if not _serve_available():
        pytest.skip("`crunch serve` is not available yet")
    workspace = rendered("demo")
    node, challenge = workspace / NODE, workspace / CHALLENGE
    python = _python_with_challenge(tmp_path, challenge)
    api_port, orchestrator_port = free_port(), free_port()
    env = clean_env(
        CRUNCH_API_PORT=str(api_port),
        CRUNCH_ORCHESTRATOR_PORT=str(orchestrator_port),
        CRUNCH_DATA_DIR=str(tmp_path / "data"),
        CRUNCH_SCORE_INTERVAL_SECONDS="1",
        CRUNCH_SCORE_SETTLE_SECONDS="2",
        CRUNCH_MARKET_BACKFILL_HOURS="0.5",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(python), "-m", "crunch_engine.cli", "serve", "--port", str(api_port)],
            cwd=node,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        verify = subprocess.run(
            [
                str(python),
                "scripts/verify.py",
                "--url",
                f"http://127.0.0.1:{api_port}",
                "--wait",
                "120",
                "--expect-models",
                ",".join(sorted(EXAMPLE_MODELS)),
            ],
            cwd=node,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert verify.returncode == 0, (
            f"{verify.stdout}\n{verify.stderr}\n--- serve log\n{log_path.read_text()[-6000:]}"
        )
        url = f"http://127.0.0.1:{api_port}/reports/leaderboard"
        with urllib.request.urlopen(url, timeout=10) as response:
            rows = {row["model_id"]: row for row in json.load(response)}
        assert set(rows) >= EXAMPLE_MODELS, rows
        for model in EXAMPLE_MODELS:
            # Real answers, not the penalty of a model that failed to load or answer.
            assert rows[model]["score_recent"] is not None, rows[model]
            assert rows[model]["score_recent"] < 1.0, rows[model]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
