"""A competition is configuration: a pack, an optional spec, callables overrides.

Precedence for each slot, lowest first: the pack, the ``--spec`` file, the
``config/callables.env`` file, an environment variable named exactly as the slot.
Resolved once at process start; any failure stops the process (exit code 2) with every
broken slot listed, never a silent fallback to a default.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crunch_engine.errors import ConfigError
from crunch_engine.packs.loader import load_pack_with_spec
from crunch_engine.packs.manifest import PackManifest, PackSpec
from crunch_engine.settings import Settings
from crunch_engine.slots.resolver import ResolvedSlot, SlotResolutionError, resolve_slot
from crunch_engine.slots.spec import SlotName

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


@dataclass(frozen=True)
class SlotChoice:
    """Which path a slot uses and where that choice came from."""

    slot: SlotName
    path: str
    source: str


def read_callables_file(path: Path) -> dict[SlotName, SlotChoice]:
    """Parse ``SLOT=package.module:attr`` lines (comments, blank lines, quotes allowed)."""
    choices: dict[SlotName, SlotChoice] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    known = {slot.value for slot in SlotName}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ConfigError(f"{path}:{number}: expected SLOT=package.module:attr, got {raw!r}")
        key, value = match.group(1), match.group(2).strip().strip("'\"")
        if key not in known:
            raise ConfigError(
                f"{path}:{number}: unknown slot {key!r}; the slots are {', '.join(sorted(known))}"
            )
        choices[SlotName(key)] = SlotChoice(SlotName(key), value, f"{path}:{number}")
    return choices


def choose_slots(
    pack: PackManifest,
    spec: PackSpec | None,
    settings: Settings,
    environ: Mapping[str, str],
) -> dict[SlotName, SlotChoice]:
    """Apply the precedence rules; returns the final choice for each of the ten slots."""
    spec_slots = set(spec.callables or {}) if spec is not None else set()
    choices = {
        slot: SlotChoice(
            slot,
            pack.callables[slot],
            f"spec {settings.spec}" if slot in spec_slots else f"pack {pack.id}",
        )
        for slot in SlotName
    }
    if settings.callables_file.is_file():
        choices.update(read_callables_file(settings.callables_file))
    for slot in SlotName:
        value = environ.get(slot.value)
        if value is not None and value.strip():
            choices[slot] = SlotChoice(slot, value.strip(), f"env {slot.value}")
    return choices


@dataclass(frozen=True)
class Competition:
    pack: PackManifest
    slots: dict[SlotName, ResolvedSlot]
    choices: dict[SlotName, SlotChoice]

    def slot(self, name: SlotName) -> ResolvedSlot:
        return self.slots[name]


def make_node_importable() -> None:
    """The node's own modules (``runtime_definitions/``...) import from its folder."""
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def load_competition(settings: Settings, environ: Mapping[str, str]) -> Competition:
    pack, spec = load_pack_with_spec(settings.pack, settings.spec, settings.schedule_file)
    choices = choose_slots(pack, spec, settings, environ)
    make_node_importable()
    resolved: dict[SlotName, ResolvedSlot] = {}
    failures: list[SlotResolutionError] = []
    for slot, choice in choices.items():
        try:
            resolved[slot] = resolve_slot(slot, choice.path, choice.source)
        except SlotResolutionError as exc:
            failures.append(exc)
    if failures:
        details = "\n".join(
            f"  {f.slot}: {f.path!r} (from {f.source}): {f.reason}" for f in failures
        )
        raise ConfigError(f"{len(failures)} slot(s) could not be resolved:\n{details}")
    return Competition(pack=pack, slots=resolved, choices=choices)
