"""`crunch tui` benchmark: time to the first frame and to the first leaderboard row, and
the TUI's CPU under load (100 models, 4 workers logging 50 lines/s each, a 1 Hz feed).

The real `crunch tui` runs in tmux (a real terminal, real rendering). The load comes from
a stand-in HTTP server started here (bench only) that serves 100-model data and the log
stream at that rate, so the figure is the TUI's own cost, not the engine's. Without
--quick it also times a real local-mode start (`crunch tui` on a fresh data dir, offline)
to its first leaderboard row.

    .venv/bin/python bench/tui.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import REPO_ROOT, print_json_line, print_table

BIN = Path(sys.executable).parent
N_MODELS = 100
WORKERS = ("market-data", "orchestrator", "predict", "score")
LINES_PER_SECOND = 50  # per worker
KEY = "bench-key"


# --- the stand-in server (runs in its own process: `bench/tui.py --standin PORT`) ---------


def _standin_app():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    started = time.monotonic()
    rng = random.Random(7)
    t0 = datetime.now(UTC)
    seq = {"n": 0}
    history: list[dict[str, object]] = []

    def iso(value: datetime) -> str:
        return value.isoformat()

    def tick() -> int:
        return int(time.monotonic() - started)

    def leaderboard(_request):  # type: ignore[no-untyped-def]
        epoch = tick() // 5  # the board changes every 5 s, like a score cycle
        local = random.Random(epoch)
        scores = sorted((0.2 + local.random() * 0.1, i) for i in range(N_MODELS))
        rows = []
        for rank, (score, i) in enumerate(scores, start=1):
            rows.append(
                {
                    "rank": rank,
                    "model_id": f"model-{i:03d}",
                    "model_name": f"tracker-{i:03d}",
                    "cruncher_name": f"cruncher{i % 17}",
                    "score_recent": score,
                    "score_steady": score + 0.01,
                    "score_anchor": score + 0.02,
                    "count_recent": 100 + epoch,
                    "count_steady": 300 + epoch,
                    "count_anchor": 700 + epoch,
                    "status": "ACTIVE",
                    "rank_change": local.randint(-3, 3),
                    "updated_at": iso(t0),
                }
            )
        return JSONResponse(rows)

    def health(_request):  # type: ignore[no-untyped-def]
        n = tick()  # every model's counts change every second: the worst case for the table
        return JSONResponse(
            [
                {
                    "model_id": f"model-{i:03d}",
                    "model_name": f"tracker-{i:03d}",
                    "state": "RUNNING" if i % 25 else "STOPPED",
                    "deployment_id": f"dep-{i:03d}",
                    "latency_p50_ms": 1.0 + (i + n) % 7 / 10,
                    "latency_p95_ms": 4.0 + (i + n) % 9 / 10,
                    "counts": {"SUCCESS": n * 5, "FAILED": i % 3, "TIMEOUT": 0},
                    "consecutive_failures": 1 if i % 10 == 0 else 0,
                    "last_error": "ValueError: [x] bad" if i % 10 == 0 else None,
                    "last_error_at": iso(t0),
                    "restarts": 0,
                    "updated_at": iso(t0),
                }
                for i in range(N_MODELS)
            ]
        )

    def processes(_request):  # type: ignore[no-untyped-def]
        return JSONResponse(
            [
                {
                    "name": name,
                    "state": "running",
                    "pid": 1000 + k,
                    "uptime_seconds": time.monotonic() - started,
                    "restarts": 0,
                    "last_exit_code": None,
                    "last_stderr": [],
                    "cpu_percent": rng.random() * 5,
                    "rss_bytes": 80_000_000 + k,
                    "argv": ["crunch", "worker", name],
                }
                for k, name in enumerate(WORKERS)
            ]
        )

    def feeds(_request):  # type: ignore[no-untyped-def]
        return JSONResponse(
            [
                {"source": "replay", "subject": s, "kind": "candle", "granularity": "1s"}
                for s in ("BTC", "ADA")
            ]
        )

    def tail(request):  # type: ignore[no-untyped-def]
        limit = int(request.query_params.get("limit", 20))
        now = tick()  # a 1 Hz feed
        base = 97_000.0 if request.query_params.get("subject") == "BTC" else 0.9
        return JSONResponse(
            [
                {
                    "source": "replay",
                    "subject": request.query_params.get("subject"),
                    "kind": "candle",
                    "granularity": "1s",
                    "ts_event": iso(t0 + timedelta(seconds=now - k)),
                    "ts_ingested": iso(t0),
                    "values": {"close": base * (1 + 0.001 * math.sin((now - k) / 5))},
                    "meta": {},
                }
                for k in range(limit)
            ]
        )

    def log_line(worker: str) -> dict[str, object]:
        seq["n"] += 1
        colour = 32 if seq["n"] % 5 else 31
        line = {
            "seq": seq["n"],
            "process": worker,
            "stream": "stdout",
            "ts": iso(datetime.now(UTC)),
            "line": f"\x1b[{colour}mINFO\x1b[0m cycle {seq['n']} [models=100] ok=99",
        }
        history.append(line)
        del history[:-500]
        return line

    def logs(_request):  # type: ignore[no-untyped-def]
        return JSONResponse(history[-200:])

    async def stream(_request):  # type: ignore[no-untyped-def]
        async def events():  # type: ignore[no-untyped-def]
            period = 1 / LINES_PER_SECOND
            next_at = time.monotonic()
            while True:
                chunk = "".join(f"event: log\ndata: {json.dumps(log_line(w))}\n\n" for w in WORKERS)
                yield chunk
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        return StreamingResponse(events(), media_type="text/event-stream")

    def predictions(request):  # type: ignore[no-untyped-def]
        model = request.query_params.get("projectIds", "")
        return JSONResponse(
            [
                {
                    "id": f"{model}-{k}",
                    "model_id": model,
                    "scope_key": "btc-up-30s",
                    "status": "SUCCESS",
                    "score_value": 0.2,
                    "performed_at": iso(t0),
                }
                for k in range(20)
            ]
        )

    def info(_request):  # type: ignore[no-untyped-def]
        return JSONResponse(
            {
                "crunch_id": "bench",
                "version": "0",
                "pack": "stand-in",
                "database": "none",
                "feed_provider": "stand-in",
                "leaderboards": ["overall"],
                "control": {"enabled": True, "requires_key": True},
            }
        )

    routes = [
        Route("/healthz", lambda r: JSONResponse({"status": "ok"})),
        Route("/info", info),
        Route("/reports/leaderboard", leaderboard),
        Route("/control/models/health", health),
        Route("/control/processes", processes),
        Route("/reports/feeds", feeds),
        Route("/reports/feeds/tail", tail),
        Route("/control/logs", logs),
        Route("/control/logs/stream", stream),
        Route("/reports/predictions", predictions),
    ]
    return Starlette(routes=routes)


def run_standin(port: int) -> None:
    import uvicorn

    uvicorn.run(_standin_app(), host="127.0.0.1", port=port, log_level="warning")


# --- driving the real TUI in tmux -----------------------------------------------------


class Terminal:
    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"bench-tui-{os.getpid()}-{random.randrange(1 << 30)}"
        self.env = env

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], env=self.env, capture_output=True, text=True
        )
        return out.stdout

    def start(self, argv: list[str]) -> float:
        started = time.perf_counter()
        self.tmux("new-session", "-d", "-s", "b", "-x", "160", "-y", "50", "exec " + " ".join(argv))
        return started

    def wait(self, pattern: str, within: float) -> float | None:
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.perf_counter() + within
        while time.perf_counter() < deadline:
            if regex.search(self.tmux("capture-pane", "-p", "-t", "b")):
                return time.perf_counter()
            time.sleep(0.01)
        return None

    def pid(self) -> int:
        return int(self.tmux("list-panes", "-t", "b", "-F", "#{pane_pid}").strip())

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", "b", key)

    def close(self) -> None:
        self.press("q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.tmux("list-sessions"):
            time.sleep(0.1)
        self.tmux("kill-server")
        base = Path(self.env.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (base / self.socket).unlink(missing_ok=True)


FIRST_FRAME = r"(connected|starting|unreachable|connecting)"
FIRST_ROW = r"Leaderboard · \w+ · [1-9]\d* models(.|\n)*?^\s*1\s+\S+\s+\S"


def _free_port() -> int:
    from crunch_tui.engine import free_port

    return free_port()


def _env(data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRUNCH_", "TMUX"))}
    env |= {
        "CRUNCH_DATA_DIR": data_dir,
        "CRUNCH_ORCHESTRATOR_PORT": str(_free_port()),
        "TERM": "xterm-256color",
        "PYTHONPATH": str(REPO_ROOT),
    }
    return env


def _cpu(pid: int, seconds: float) -> float:
    import psutil

    proc = psutil.Process(pid)
    proc.cpu_percent(None)
    time.sleep(seconds)
    return proc.cpu_percent(None)


def bench_standin(window: float, runs: int, data_dir: str) -> dict[str, object]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    standin = subprocess.Popen([sys.executable, __file__, "--standin", str(port)])
    figures: dict[str, object] = {}
    try:
        import httpx

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/healthz", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        frames, rows = [], []
        for run in range(runs):
            term = Terminal(_env(data_dir))
            started = term.start([str(BIN / "crunch"), "tui", "--attach", url, "--api-key", KEY])
            first_frame = term.wait(FIRST_FRAME, 15)
            first_row = term.wait(FIRST_ROW, 30)
            if first_frame:
                frames.append(first_frame - started)
            if first_row:
                rows.append(first_row - started)
            if run == runs - 1:
                pid = term.pid()
                time.sleep(3)  # warm up: backfill, first polls
                figures["cpu_dashboard_pct"] = _cpu(pid, window)
                term.press("l")
                time.sleep(2)
                figures["cpu_logs_pct"] = _cpu(pid, window)
                term.press("m")
                time.sleep(2)
                figures["cpu_models_pct"] = _cpu(pid, window)
            term.close()
        figures["first_frame_s"] = sorted(frames)[len(frames) // 2] if frames else None
        figures["first_row_attach_s"] = sorted(rows)[len(rows) // 2] if rows else None
    finally:
        standin.terminate()
        standin.wait(10)
    return figures


def bench_local(data_dir: str) -> dict[str, object]:
    """A real local-mode start: `crunch tui` starts `crunch serve` on a fresh data dir."""
    term = Terminal(_env(data_dir))
    started = term.start([str(BIN / "crunch"), "tui"])
    first_frame = term.wait(FIRST_FRAME, 15)
    first_row = term.wait(FIRST_ROW, 120)
    pid = term.pid()
    cpu = _cpu(pid, 10) if first_row else None
    term.close()
    return {
        "local_first_frame_s": first_frame - started if first_frame else None,
        "local_first_row_s": first_row - started if first_row else None,
        "local_cpu_pct": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced run, under a minute")
    parser.add_argument("--standin", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.standin:
        run_standin(args.standin)
        return
    window = 5.0 if args.quick else 20.0
    runs = 2 if args.quick else 5
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as tmp:
        figures = bench_standin(window, runs, tmp)
        if not args.quick:
            figures |= bench_local(str(Path(tmp) / "local"))
    figures |= {
        "models": N_MODELS,
        "log_lines_per_s": LINES_PER_SECOND * len(WORKERS),
        "cpu_window_s": window,
        "quick": args.quick,
    }

    def fmt(value: object, unit: str) -> str:
        return "n/a" if value is None else f"{value:.2f} {unit}"  # type: ignore[str-format]

    rows = [
        ("first frame (attach, median)", fmt(figures["first_frame_s"], "s"), "< 1.5 s"),
        ("first leaderboard row (attach)", fmt(figures["first_row_attach_s"], "s"), ""),
        ("TUI CPU, Dashboard", fmt(figures["cpu_dashboard_pct"], "%"), "< 15 %"),
        ("TUI CPU, Logs (200 lines/s)", fmt(figures["cpu_logs_pct"], "%"), "< 15 %"),
        ("TUI CPU, Models", fmt(figures["cpu_models_pct"], "%"), "< 15 %"),
    ]
    if not args.quick:
        rows += [
            ("local: first frame", fmt(figures.get("local_first_frame_s"), "s"), "< 1.5 s"),
            ("local: first leaderboard row", fmt(figures.get("local_first_row_s"), "s"), "< 60 s"),
            ("local: TUI CPU (real engine)", fmt(figures.get("local_cpu_pct"), "%"), "< 15 %"),
        ]
    title = f"crunch tui: {N_MODELS} models, {figures['log_lines_per_s']} log lines/s, 1 Hz feed"
    print_table(title, ["measure", "value", "target"], rows)
    print_json_line(figures)


if __name__ == "__main__":
    main()
