"""A real `crunch serve` in a subprocess, on the offline demo, for API and browser tests."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crunch_engine.slots.spec import SlotName
from crunch_engine.testing.postgres import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_MODELS = {"momentum", "mean-reversion", "noisy"}


@dataclass
class LiveServer:
    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    slots = {slot.value for slot in SlotName}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUNCH_") and k not in slots}
    env.update(
        {
            "CRUNCH_DATA_DIR": str(data_dir),
            "CRUNCH_ORCHESTRATOR_PORT": str(free_port()),
            "CRUNCH_MARKET_BACKFILL_HOURS": "0.5",
            "CRUNCH_SCORE_INTERVAL_SECONDS": "1",
            "CRUNCH_SCORE_SETTLE_SECONDS": "2",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def start_serve(tmp: Path, *, api_key: str | None = None, **extra_env: str) -> LiveServer:
    """Start `crunch serve` on a free port; returns once /healthz answers."""
    key = api_key if api_key is not None else secrets.token_urlsafe(16)
    port = free_port()
    env = serve_env(tmp / "data", CRUNCH_API_KEY=key, **extra_env)
    log = tmp / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "crunch_engine.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", key, process, log, env)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"crunch serve exited {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"crunch serve did not answer:\n{server.output()[-3000:]}")
        time.sleep(0.3)


def wait_for_leaderboard(server: LiveServer, timeout: float = 150) -> list[dict[str, Any]]:
    """Until every demo model is ranked with at least one scored prediction."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"crunch serve exited:\n{server.output()[-4000:]}")
        rows = httpx.get(f"{server.url}/reports/leaderboard", timeout=5).json()
        counts = {row["model_id"]: row.get("count_recent", 0) for row in rows}
        if set(counts) >= DEMO_MODELS and all(counts[m] >= 1 for m in DEMO_MODELS):
            return rows
        time.sleep(1)
    raise AssertionError(f"no leaderboard after {timeout}s: {rows}\n{server.output()[-4000:]}")
