"""Start and stop model server processes (ours and the reference) on loopback ports.

Shared by the tests and bench/_fanout.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
DEMO_MODELS = REPO_ROOT / "crunch_engine" / "demo" / "models"
BASE_CLASS = "crunch_engine.demo.tracker.TrackerBase"


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never one this process handed out before: the
    kernel may offer a released port again before the server it was meant for binds it."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_port(
    port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0
) -> None:
    """Block until 127.0.0.1:port accepts connections (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def start_our_server(
    code_dir: Path | str,
    port: int | None = None,
    *,
    extra: Sequence[str] = (),
    log_level: str = "WARNING",
    stderr: int | None = subprocess.DEVNULL,
) -> tuple[subprocess.Popen[bytes], int]:
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "crunch_engine.models.server",
        "--address",
        f"127.0.0.1:{port}",
        "--code-dir",
        str(code_dir),
        "--log-level",
        log_level,
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    return process, port


def start_reference_server(
    python: Path, code_dir: Path | str, port: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """CrunchDAO's crunch-model-runner (its ``model-runner`` CLI) from its own venv."""
    port = port or free_port()
    command = [
        str(Path(python).parent / "model-runner"),
        "--address",
        f"127.0.0.1:{port}",
        "--code-directory",
        str(code_dir),
        "--resource-directory",
        str(Path(code_dir) / "resources"),
        "--log-level",
        "warning",
    ]
    # The base class (crunch_engine.demo.tracker) must be importable by the reference server.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return process, port


def stop(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 5.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
