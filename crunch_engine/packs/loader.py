"""Find, load and merge packs, with errors that say which file, where, and why."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

import crunch_engine
from crunch_engine.errors import ConfigError
from crunch_engine.packs.manifest import PackManifest, PackSpec

PACK_FILE = "pack.json"
M = TypeVar("M", bound=BaseModel)


def builtin_packs_dir() -> Path:
    """Packs shipped in the wheel (``crunch_engine/_packs``) or, in a source checkout,
    the repository's ``packs/`` folder."""
    package_dir = Path(crunch_engine.__file__).resolve().parent
    for candidate in (package_dir / "_packs", package_dir.parent / "packs"):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"no packs found (looked in {package_dir / '_packs'} and the repo root)")


def builtin_pack_names() -> list[str]:
    root = builtin_packs_dir()
    return sorted(p.name for p in root.iterdir() if (p / PACK_FILE).is_file())


def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def json_path(location: tuple[int | str, ...]) -> str:
    path = "$"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validation_message(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        got = error.get("input")
        shown = json.dumps(got, default=str) if not isinstance(got, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {json_path(tuple(error['loc']))}: {message} (got {shown})")
    return f"{source}: invalid:\n" + "\n".join(lines)


def _validate(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(source, exc)) from None


def resolve_pack_file(name_or_path: str) -> Path:
    """A pack name (``baseline``), a pack folder or a ``pack.json`` path."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    if (candidate / PACK_FILE).is_file():
        return candidate / PACK_FILE
    if "/" not in name_or_path and name_or_path in builtin_pack_names():
        return builtin_packs_dir() / name_or_path / PACK_FILE
    raise ConfigError(
        f"unknown pack {name_or_path!r}: known packs are {', '.join(builtin_pack_names())} "
        "(or give a path to a pack.json)"
    )


def load_pack_data(name_or_path: str) -> tuple[Path, dict[str, Any]]:
    path = resolve_pack_file(name_or_path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return path, data


def load_pack(name_or_path: str) -> PackManifest:
    path, data = load_pack_data(name_or_path)
    return _validate(PackManifest, data, str(path))


def list_packs() -> list[PackManifest]:
    return [load_pack(name) for name in builtin_pack_names()]


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_spec(pack: dict[str, Any], spec: PackSpec) -> dict[str, Any]:
    """Merge a spec over a pack: slot by slot, config by config (matched on scope_key,
    deep-merged), scoring key by key; other fields replace."""
    merged = copy.deepcopy(pack)
    if spec.description is not None:
        merged["description"] = spec.description
    if spec.checkpoint_interval_seconds is not None:
        merged["checkpoint_interval_seconds"] = spec.checkpoint_interval_seconds
    if spec.callables:
        merged["callables"] = {
            **merged.get("callables", {}),
            **{str(k): v for k, v in spec.callables.items()},
        }
    if spec.scoring:
        merged["scoring"] = _deep_merge(merged.get("scoring", {}), spec.scoring)
    if spec.scheduled_prediction_configs:
        configs = list(merged.get("scheduled_prediction_configs", []))
        index = {c.get("scope_key"): i for i, c in enumerate(configs)}
        for override in spec.scheduled_prediction_configs:
            key = override.get("scope_key")
            if key in index:
                configs[index[key]] = _deep_merge(configs[index[key]], override)
            else:
                configs.append(copy.deepcopy(override))
        merged["scheduled_prediction_configs"] = configs
    return merged


def load_spec(path: Path) -> PackSpec:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return _validate(PackSpec, data, str(path))


def load_schedule(path: Path) -> PackSpec:
    """A schedule file: a JSON array of scheduled prediction configs, as a spec."""
    data = read_json(path)
    if not isinstance(data, list):
        raise ConfigError(
            f"{path}: expected a JSON array of scheduled prediction configs, "
            f"got {type(data).__name__}"
        )
    return _validate(PackSpec, {"scheduled_prediction_configs": data}, str(path))


def load_pack_with_spec(
    name_or_path: str, spec_path: Path | None, schedule_path: Path | None = None
) -> tuple[PackManifest, PackSpec | None]:
    """The pack, with the spec then the schedule file merged over it when given (and the
    spec itself)."""
    pack_path, data = load_pack_data(name_or_path)
    pack = _validate(PackManifest, data, str(pack_path))  # the pack alone must be valid
    sources = [str(pack_path)]
    spec = None
    if spec_path is not None:
        spec = load_spec(spec_path)
        data = merge_spec(data, spec)
        sources.append(str(spec_path))
    if schedule_path is not None and schedule_path.is_file():
        data = merge_spec(data, load_schedule(schedule_path))
        sources.append(str(schedule_path))
    if len(sources) == 1:
        return pack, spec
    return _validate(PackManifest, data, " merged with ".join(sources)), spec
