"""Dockerfile and docker-compose.yml, checked without a Docker daemon: instructions,
non-root user, ports, services, healthchecks, start order, environment, and that every
`crunch ...` command they run exists with the options they pass."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from crunch_engine.settings import normalise_database_url

REPO_ROOT = Path(__file__).resolve().parents[1]
CRUNCH = Path(sys.executable).parent / "crunch"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form of CMD / ENTRYPOINT / a HEALTHCHECK's CMD, else None."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text[text.index("CMD") + 3 :] if "CMD" in text else ""
        text = text.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def interpolate(value: str, environ: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR:-default}`` with the defaults (or ``environ``)."""
    environ = environ or {}
    return _VARIABLE.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)


def crunch_command_problems(argv: list[str]) -> list[str]:
    """Why ``argv`` (``["crunch", "serve", "--host", ...]``) would not run: the
    sub-command must exist (``--help`` exits 0) and offer every option given."""
    assert argv and argv[0] == "crunch", argv
    words = [a for a in argv[1:] if not a.startswith("-")]
    options = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")]
    env = {**os.environ, "COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("CRUNCH_")}
    # The longest prefix of words that is a command (the rest are option values).
    for size in range(len(words), 0, -1):
        result = subprocess.run(
            [str(CRUNCH), *words[:size], "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        usage = re.search(r"Usage: crunch ([^\[]*)", result.stdout)
        if result.returncode == 0 and usage and usage.group(1).split() == words[:size]:
            return [f"{' '.join(argv)}: no option {o}" for o in options if o not in result.stdout]
    return [f"{' '.join(argv)}: no such crunch command"]


def check_dockerfile(path: Path, context: Path) -> list[Instruction]:
    """Checks shared by this repository's Dockerfile and the generated node's."""
    instructions = parse_dockerfile(path.read_text(encoding="utf-8"))
    keywords = [i.keyword for i in instructions]
    assert keywords[0] == "FROM", "the first instruction is FROM"
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", instructions[0].arguments.split()[0])

    users = [i.arguments.split(":")[0] for i in instructions if i.keyword == "USER"]
    assert users, "a USER instruction: never run as root"
    assert users[-1] not in ("root", "0")
    created = " ".join(i.arguments for i in instructions if i.keyword == "RUN")
    assert re.search(rf"useradd\b[^&]*\b{re.escape(users[-1])}\b", created), "the user is created"
    last_user = max(i.line for i in instructions if i.keyword == "USER")
    for instruction in instructions:
        if instruction.keyword in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
            assert instruction.line > last_user, f"{instruction.keyword} after USER"

    exposed = {
        int(p.split("/")[0])
        for i in instructions
        if i.keyword == "EXPOSE"
        for p in i.arguments.split()
    }
    assert exposed, "EXPOSE the API port"
    env_text = " ".join(i.arguments for i in instructions if i.keyword == "ENV")
    port = re.search(r"CRUNCH_API_PORT=(\d+)", env_text)
    assert port and int(port.group(1)) in exposed
    assert "CRUNCH_API_HOST=0.0.0.0" in env_text

    for instruction in instructions:
        if instruction.keyword in ("COPY", "ADD") and "--from" not in instruction.arguments:
            parts = [p for p in shlex.split(instruction.arguments) if not p.startswith("--")]
            for source in parts[:-1]:
                assert (context / source).exists(), f"{path}:{instruction.line}: {source} missing"

    [cmd] = [i for i in instructions if i.keyword == "CMD"]
    argv = cmd.exec_form()
    assert argv is not None, "CMD in exec (JSON) form, so signals reach crunch"
    assert argv[:2] == ["crunch", "serve"] and "--host" in argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert crunch_command_problems(argv) == []

    [health] = [i for i in instructions if i.keyword == "HEALTHCHECK"]
    probe = health.exec_form()
    assert probe is not None and any("/healthz" in part for part in probe)
    assert any(str(p) in " ".join(probe) for p in exposed)
    return instructions


def check_compose(path: Path, engine_service: str) -> dict[str, Any]:
    """Checks shared by this repository's compose file and the generated node's."""
    compose = yaml.safe_load(path.read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", engine_service}

    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    test = postgres["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(test)
    pg_env = {k: interpolate(str(v)) for k, v in postgres["environment"].items()}
    volume_names = set(compose.get("volumes") or {})
    assert any(v.split(":")[0] in volume_names for v in postgres["volumes"]), "a data volume"

    migrate, engine = services["migrate"], services[engine_service]
    assert migrate["command"] == ["crunch", "db", "upgrade"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate.get("restart") == "no"
    assert engine["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert engine["command"][:2] == ["crunch", "serve"]
    assert "--no-migrate" in engine["command"], "migrate ran once already"
    assert engine["command"][engine["command"].index("--host") + 1] == "0.0.0.0"
    for service in (migrate, engine):
        assert service["image"] == migrate["image"] and "build" in service
        assert crunch_command_problems(service["command"]) == []
        url = interpolate(service["environment"]["CRUNCH_DATABASE_URL"])
        assert url == (
            f"postgresql+asyncpg://{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}"
            f"@postgres:5432/{pg_env['POSTGRES_DB']}"
        )
        assert normalise_database_url(url) == url
        assert service["environment"]["CRUNCH_DATA_DIR"] == "/data"
        mounted = {
            interpolate(v).split(":")[0]: interpolate(v).split(":")[1] for v in service["volumes"]
        }
        assert any(name in volume_names and target == "/data" for name, target in mounted.items())

    [mapping] = engine["ports"]
    host, container = interpolate(mapping).rsplit(":", 1)
    assert host.isdigit() and container == "8000"
    port = engine["command"][engine["command"].index("--port") + 1]
    assert port == container
    probe = engine["healthcheck"]["test"]
    assert probe[0] == "CMD" and any(f":{container}/healthz" in part for part in probe)
    return compose


def test_dockerfile() -> None:
    instructions = check_dockerfile(REPO_ROOT / "Dockerfile", REPO_ROOT)
    copies = [i.arguments for i in instructions if i.keyword == "COPY"]
    for needed in ("pyproject.toml", "crunch_engine", "crunch_tui", "packs"):
        assert any(needed in c for c in copies), f"{needed} is copied into the image"
    runs = " ".join(i.arguments for i in instructions if i.keyword == "RUN")
    assert "pip install ." in runs, "the engine is installed from this repository"
    assert any(i.keyword == "VOLUME" and "/data" in i.arguments for i in instructions), (
        "the data directory is a volume"
    )


def test_dockerignore_keeps_the_image_small() -> None:
    patterns = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".crunch", ".env", ".local.env"} <= patterns


def test_compose_file() -> None:
    compose = check_compose(REPO_ROOT / "docker-compose.yml", "engine")
    engine = compose["services"]["engine"]
    assert engine["build"] == "."
    assert set(compose["volumes"]) == {"pgdata", "crunch-data"}


def test_dockerfile_parser() -> None:
    text = (
        "# syntax=docker/dockerfile:1\nFROM python:3.11-slim\nRUN a \\\n"
        '    # a comment inside\n    && b\nCMD ["crunch", "serve"]\n'
    )
    parsed = parse_dockerfile(text)
    assert [(i.keyword, i.arguments) for i in parsed] == [
        ("FROM", "python:3.11-slim"),
        ("RUN", "a && b"),
        ("CMD", '["crunch", "serve"]'),
    ]
    assert parsed[2].exec_form() == ["crunch", "serve"]


@pytest.mark.parametrize(
    ("argv", "ok"),
    [
        (["crunch", "db", "upgrade"], True),
        (["crunch", "serve", "--host", "0.0.0.0", "--no-migrate"], True),
        (["crunch", "serve", "--no-such-option"], False),
        (["crunch", "deploy"], False),
    ],
)
def test_crunch_command_check(argv: list[str], ok: bool) -> None:
    assert (crunch_command_problems(argv) == []) is ok
