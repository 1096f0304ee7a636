"""models.yml: which submissions run, under which identity, and whether they should run.

Format (ours): ``models: [{id, name, submission, cruncher_id?, cruncher_name?,
desired_state: RUNNING|STOPPED}]``. The reference orchestrator's spelling is accepted
too: ``submission_id`` for ``submission`` and a per-entry ``crunch_id``; entries of
another crunch are skipped (the reference serves several crunches from one file).
Every error names the file, the entry index and the field, so a person can fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from crunch_engine.errors import ConfigError
from crunch_engine.models.contracts import ModelIdentity

MODELS_FILE = "models.yml"
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""Ids name folders under the data directory: no slashes, no leading dot."""


class DesiredState(StrEnum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class ModelsFileError(ConfigError):
    """models.yml cannot be used; the message names the file, entry and field."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=MODEL_ID_PATTERN)
    name: str | None = None
    submission: str = Field(
        min_length=1, validation_alias=AliasChoices("submission", "submission_id")
    )
    crunch_id: str | None = None
    cruncher_id: str = ""
    cruncher_name: str = ""
    desired_state: DesiredState = DesiredState.RUNNING

    @field_validator("id", "name", "submission", "crunch_id", "cruncher_id", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: object) -> object:
        # YAML reads `id: 42` as an int; ids are text on the wire.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("desired_state", mode="before")
    @classmethod
    def _upper_state(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model as configured: what to run and who it belongs to."""

    id: str
    name: str
    submission_dir: Path
    cruncher_id: str
    cruncher_name: str
    desired_state: DesiredState

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(
            model_name=self.name, cruncher_id=self.cruncher_id, cruncher_name=self.cruncher_name
        )

    @property
    def requirements(self) -> Path | None:
        path = self.submission_dir / "requirements.txt"
        return path if path.is_file() else None


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """A validated models.yml."""

    path: Path
    models: tuple[ModelSpec, ...]
    skipped: tuple[str, ...] = ()
    """Ids of entries that belong to another crunch."""

    def get(self, model_id: str) -> ModelSpec | None:
        return next((spec for spec in self.models if spec.id == model_id), None)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<entry>"


def _describe(path: Path, index: int, error: dict[str, Any]) -> str:
    got = error.get("input")
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    shown = "" if error.get("type") == "missing" else f" (got {got!r})"
    return f"{path}: models[{index}].{_field_path(error.get('loc', ()))}: {message}{shown}"


def _load_yaml(path: Path, text: str) -> list[Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ModelsFileError(f"{path}:{where}: not valid YAML: {problem}") from None
    if document is None:
        return []
    if not isinstance(document, dict) or set(document) - {"models"}:
        raise ModelsFileError(f"{path}: expected a mapping with one key `models:` (a list)")
    entries = document.get("models")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ModelsFileError(f"{path}: `models` must be a list, got {type(entries).__name__}")
    return entries


def _submission_dir(path: Path, index: int, submission: str) -> Path:
    base = path.parent.resolve()
    folder = (base / submission).resolve()
    if not folder.is_relative_to(base) or folder == base:
        raise ModelsFileError(
            f"{path}: models[{index}].submission: {submission!r} must be a folder inside {base}"
        )
    if not folder.is_dir():
        raise ModelsFileError(
            f"{path}: models[{index}].submission: folder {submission!r} not found beside "
            f"{path.name} (looked for {folder})"
        )
    return folder


def parse_models_file(path: Path, text: str, crunch_id: str) -> FleetConfig:
    """Validate the content of a models.yml; raise ``ModelsFileError`` naming every problem."""
    errors: list[str] = []
    specs: list[ModelSpec] = []
    skipped: list[str] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(_load_yaml(path, text)):
        if not isinstance(raw, dict):
            errors.append(f"{path}: models[{index}]: expected a mapping, got {raw!r}")
            continue
        try:
            entry = _Entry.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_describe(path, index, error) for error in exc.errors())
            continue
        if entry.crunch_id is not None and entry.crunch_id != crunch_id:
            skipped.append(entry.id)
            continue
        if entry.id in seen:
            errors.append(
                f"{path}: models[{index}].id: {entry.id!r} already used by models[{seen[entry.id]}]"
            )
            continue
        seen[entry.id] = index
        try:
            folder = _submission_dir(path, index, entry.submission)
        except ModelsFileError as exc:
            errors.append(str(exc))
            continue
        specs.append(
            ModelSpec(
                id=entry.id,
                name=entry.name or entry.id,
                submission_dir=folder,
                cruncher_id=entry.cruncher_id,
                cruncher_name=entry.cruncher_name,
                desired_state=entry.desired_state,
            )
        )
    if errors:
        raise ModelsFileError("invalid models file:\n  " + "\n  ".join(errors))
    return FleetConfig(path=path, models=tuple(specs), skipped=tuple(skipped))


def load_models_file(models_dir: Path, crunch_id: str) -> FleetConfig:
    """Read and validate ``<models_dir>/models.yml``."""
    path = models_dir / MODELS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelsFileError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelsFileError(f"{path}: cannot read: {exc}") from None
    return parse_models_file(path, text, crunch_id)
