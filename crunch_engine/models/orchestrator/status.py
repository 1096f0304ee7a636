"""``<data_dir>/orchestrator/state.json``: what the supervisor, TUI and API read.

Rewritten atomically (temporary file + rename) on every change, so a reader never sees
half a file. The orchestrator is the only writer.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_VERSION = 1


def state_path(data_dir: Path) -> Path:
    return data_dir / "orchestrator" / "state.json"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` so readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_state(path: Path) -> dict[str, Any] | None:
    """The last state written, or None when there is none (for readers and tests)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class StateFile:
    """Builds and writes the state document."""

    def __init__(self, path: Path, *, crunch_id: str, websocket_url: str) -> None:
        self.path = path
        self.crunch_id = crunch_id
        self.websocket_url = websocket_url
        self.started_at = datetime.now(UTC)

    def write(
        self,
        models: list[dict[str, Any]],
        *,
        running: bool,
        models_file: str,
        config_error: str | None,
    ) -> None:
        write_json_atomic(
            self.path,
            {
                "version": STATE_VERSION,
                "crunch_id": self.crunch_id,
                "pid": os.getpid(),
                "running": running,
                "websocket_url": self.websocket_url,
                "models_file": models_file,
                "config_error": config_error,
                "started_at": self.started_at.isoformat(),
                "updated_at": datetime.now(UTC).isoformat(),
                "models": models,
            },
        )
