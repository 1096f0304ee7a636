"""Polls the models directory so edits to models.yml or a submission take effect live.

Polling (about once a second) rather than inotify: it works on every platform and on
network or bind-mounted folders, and a few stat calls per second cost nothing. A broken
models.yml is logged once with its reason and the last good configuration is kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from crunch_engine.models.orchestrator.config import (
    MODELS_FILE,
    FleetConfig,
    ModelsFileError,
    parse_models_file,
)

logger = logging.getLogger(__name__)

IGNORED_DIRS = frozenset({"__pycache__", ".git", ".venv", "venv", "node_modules", ".mypy_cache"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def fingerprint_folder(folder: Path) -> str:
    """A hash of every file's relative path, size and mtime: changes when code changes."""
    digest = hashlib.sha256()
    entries: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in files:
            if name.endswith(IGNORED_SUFFIXES):
                continue
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue
            entries.append(f"{os.path.relpath(full, folder)}\0{stat.st_size}\0{stat.st_mtime_ns}")
    for entry in sorted(entries):
        digest.update(entry.encode("utf-8", "surrogateescape"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """The last good configuration plus fingerprints of what it points at."""

    config: FleetConfig
    config_hash: str
    """sha256 of the models.yml content this configuration was read from."""
    code_hashes: dict[str, str] = field(default_factory=dict)
    """model id -> fingerprint of its submission folder."""


class ModelsWatcher:
    """Turns the models directory into ``FleetSnapshot``s, only when something changed."""

    def __init__(self, models_dir: Path, crunch_id: str) -> None:
        self.models_dir = models_dir
        self.path = models_dir / MODELS_FILE
        self.crunch_id = crunch_id
        self.last_error: str | None = None
        self._seen_hash: str | None = None
        self._good: FleetConfig | None = None
        self._good_hash = ""
        self._last: FleetSnapshot | None = None

    @property
    def current(self) -> FleetSnapshot | None:
        return self._last

    def _read(self) -> tuple[str, str | None]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return "missing", None
        except OSError as exc:
            return f"unreadable:{exc}", None
        return hashlib.sha256(data).hexdigest(), data.decode("utf-8", "replace")

    def _reload(self, content_hash: str, text: str | None) -> None:
        try:
            if text is None:
                raise ModelsFileError(f"{self.path}: not found or unreadable")
            config = parse_models_file(self.path, text, self.crunch_id)
        except ModelsFileError as exc:
            if str(exc) != self.last_error:  # log each distinct reason once, not every poll
                kept = "keeping the last good configuration" if self._good else "no models yet"
                logger.error("models.yml rejected (%s): %s", kept, exc)
            self.last_error = str(exc)
            return
        self.last_error = None
        self._good, self._good_hash = config, content_hash
        if config.skipped:
            logger.info(
                "models.yml: skipped entries of another crunch: %s", ", ".join(config.skipped)
            )
        logger.info("models.yml loaded: %d model(s) from %s", len(config.models), self.path)

    def poll(self) -> FleetSnapshot | None:
        """Look once; the new snapshot when the config or any submission changed, else None."""
        content_hash, text = self._read()
        # A rejected file is re-read every poll: it may name a folder that appears later.
        if content_hash != self._seen_hash or self.last_error is not None:
            self._seen_hash = content_hash
            self._reload(content_hash, text)
        if self._good is None:
            return None
        code_hashes = {
            spec.id: fingerprint_folder(spec.submission_dir) for spec in self._good.models
        }
        snapshot = FleetSnapshot(self._good, self._good_hash, code_hashes)
        if (
            self._last is not None
            and self._last.config_hash == snapshot.config_hash
            and self._last.code_hashes == snapshot.code_hashes
        ):
            return None
        self._last = snapshot
        return snapshot
