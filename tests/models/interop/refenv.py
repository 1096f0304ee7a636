"""Cached virtualenvs holding CrunchDAO's reference packages.

The reference client (model-runner-client, protobuf>=6) and server (crunch-model-runner,
protobuf<6) cannot share an environment, nor ours: each gets its own venv under
``${XDG_CACHE_HOME:-~/.cache}/crunch-control/test-venvs/<name>-<hash of spec>``, built
once with that venv's pip from PyPI and reused by later runs (tests and bench).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

CLIENT_SPEC = ("model-runner-client==0.14.0",)
SERVER_SPEC = ("crunch-model-runner==0.4.2",)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crunch-control" / "test-venvs"


def reference_venv(name: str, spec: tuple[str, ...], timeout: float = 900.0) -> Path:
    """The venv holding ``spec`` (built on first use); returns its python executable."""
    key = hashlib.sha256(f"{sys.version_info[:2]}|{'|'.join(spec)}".encode()).hexdigest()[:12]
    venv = cache_root() / f"{name}-{key}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test workers must not build it twice
        if marker.exists():
            return python
        if venv.exists():
            shutil.rmtree(venv)  # an interrupted build
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=timeout)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *spec],
            check=True,
            timeout=timeout,
        )
        marker.write_text("\n".join(spec) + "\n")
    return python


def client_python() -> Path:
    return reference_venv("model-runner-client", CLIENT_SPEC)


def server_python() -> Path:
    return reference_venv("crunch-model-runner", SERVER_SPEC)
