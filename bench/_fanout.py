"""Fan-out latency: the wall time of one ``predict`` sent to N local model processes.

Stacks, same machine, same trivial model (the demo momentum model), loopback:

- ours-fast: ``ModelClient`` with its pipelining fast path + our model servers;
- ours-grpc: ``ModelClient`` on grpc.aio only (``fast_path=False``) + our model servers;
- ours-fast tick+predict: ``call_sequence([tick, predict])``, one write per model (the
  cycle's model calls; the predict worker adds the DB write);
- reference: CrunchDAO's ``model-runner-client`` 0.14.0 + ``crunch-model-runner`` 0.4.2
  servers, each from its own cached venv (they cannot share one), the client driven by
  ``tests/models/interop/ref_client_driver.py`` and discovering the models through a
  WebSocket announcer in this process.

p50 / p99 over >= 100 rounds after a warm-up. Targets (issue 4): ours at 100 models at
least 2x faster than the reference, and p50 <= 20 ms.
Usage: python bench/_fanout.py [--quick] [--sizes 1,10,50,100] [--rounds 200] [--no-reference]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, percentile, print_json_line, print_table

from crunch_engine.models.client import ModelClient
from crunch_engine.models.contracts import ModelEndpoint, ModelIdentity, WireState
from tests.models.interop import refenv
from tests.models.interop.announcer import Announcer
from tests.models.interop.servers import (
    BASE_CLASS,
    DEMO_MODELS,
    start_our_server,
    start_reference_server,
    stop,
    wait_port,
)

CODE_DIR = DEMO_MODELS / "momentum"
SCOPE = {"asset": "BTC", "horizon_seconds": 60, "step_seconds": 60}
TICK = {
    "as_of": "2024-01-01T00:00:00Z",
    "candles": {"BTC": [{"close": 100.0 + i} for i in range(30)]},
}
DRIVER = (
    Path(__file__).resolve().parents[1] / "tests" / "models" / "interop" / "ref_client_driver.py"
)


def endpoint(index: int, port: int) -> ModelEndpoint:
    model_id = f"model-{index:03d}"
    return ModelEndpoint(
        model_id=model_id,
        deployment_id=f"{model_id}_bench",
        identity=ModelIdentity(model_name=model_id),
        state=WireState.RUNNING,
        ip="127.0.0.1",
        port=port,
    )


def summary(stack: str, n: int, walls_ms: Sequence[float]) -> dict[str, Any]:
    return {
        "stack": stack,
        "models": n,
        "rounds": len(walls_ms),
        "p50_ms": percentile(walls_ms, 50),
        "p99_ms": percentile(walls_ms, 99),
    }


async def measure_ours(sizes: Sequence[int], rounds: int, warmup: int) -> list[dict[str, Any]]:
    """Our client (fast path, then grpc.aio only) + our servers, one process per model."""
    started = [start_our_server(CODE_DIR) for _ in range(max(sizes))]
    try:
        for process, port in started:
            await asyncio.to_thread(wait_port, port, process)
        rows = []
        for fast_path in (True, False):
            rows += await measure_client(started, sizes, rounds, warmup, fast_path)
        return rows
    finally:
        stop([process for process, _ in started])


async def measure_client(
    started: Sequence[tuple[Any, int]],
    sizes: Sequence[int],
    rounds: int,
    warmup: int,
    fast_path: bool,
) -> list[dict[str, Any]]:
    client = ModelClient(base_classname=BASE_CLASS, timeout=5.0, fast_path=fast_path)
    for index, (_, port) in enumerate(started):
        client.add_endpoint(endpoint(index, port))
    await client.wait_ready(len(started), timeout=60)
    fast = sum(slot.fast is not None for slot in client._slots.values())
    if fast_path and fast != len(started):
        raise RuntimeError(f"only {fast}/{len(started)} models on the fast path")
    await client.call("tick", [TICK])
    stack = "ours-fast" if fast_path else "ours-grpc"
    ids = [endpoint(i, 0).model_id for i in range(len(started))]
    sequence = [("tick", [TICK], None), ("predict", [], SCOPE)]
    rows = []
    for n in sizes:
        walls = []
        for index in range(warmup + rounds):
            began = time.perf_counter()
            results = await client.call("predict", kwargs=SCOPE, model_ids=ids[:n])
            elapsed = (time.perf_counter() - began) * 1000
            check(results.values())
            if index >= warmup:
                walls.append(elapsed)
        rows.append(summary(stack, n, walls))
    for n in sizes:
        walls = []
        for index in range(warmup + rounds):
            began = time.perf_counter()
            both = await client.call_sequence(sequence, model_ids=ids[:n])
            elapsed = (time.perf_counter() - began) * 1000
            for results in both:
                check(results.values())
            if index >= warmup:
                walls.append(elapsed)
        rows.append(summary(f"{stack} tick+predict", n, walls))
    await client.close()
    return rows


def check(results: Any) -> None:
    failed = [r for r in results if r.status != "SUCCESS"]
    if failed:
        raise RuntimeError(f"{len(failed)} calls failed: {failed[0]}")


async def measure_reference(sizes: Sequence[int], rounds: int, warmup: int) -> list[dict[str, Any]]:
    """Reference client 0.14.0 + reference servers 0.4.2, from their own venvs."""
    client_python = await asyncio.to_thread(refenv.client_python)
    server_python = await asyncio.to_thread(refenv.server_python)
    started = [start_reference_server(server_python, CODE_DIR) for _ in range(max(sizes))]
    announcer = await Announcer("bench").start()
    try:
        for process, port in started:
            await asyncio.to_thread(wait_port, port, process, 120)
        rows = []
        for n in sizes:
            announcer.models.clear()
            for index, (_, port) in enumerate(started[:n]):
                announcer.models[endpoint(index, port).model_id] = endpoint(index, port)
            job = {
                "mode": "bench",
                "ws_port": announcer.port,
                "crunch_id": "bench",
                "base_class": BASE_CLASS,
                "expect": n,
                "rounds": rounds,
                "warmup": warmup,
                "timeout": 5,
                "call": ["predict", [], SCOPE],
            }
            output = await run_driver(client_python, job)
            if output["last_success"] != n:
                raise RuntimeError(f"reference: {output['last_success']}/{n} successes")
            rows.append(summary("reference", n, output["wall_ms"]))
        return rows
    finally:
        await announcer.close()
        stop([process for process, _ in started])


async def run_driver(python: Path, job: dict[str, Any], within: float = 600) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        str(python),
        str(DRIVER),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(job).encode()), within)
    if process.returncode != 0:
        raise RuntimeError(
            f"reference driver failed ({process.returncode}): {err.decode()[-2000:]}"
        )
    return json.loads(out.decode().strip().splitlines()[-1])


async def run(
    sizes: Sequence[int], rounds: int, warmup: int, reference: bool
) -> list[dict[str, Any]]:
    rows = await measure_ours(sizes, rounds, warmup)
    if reference:
        rows += await measure_reference(sizes, rounds, warmup)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1,10,100 and 100 rounds")
    parser.add_argument("--sizes", default="1,10,50,100")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    sizes = [1, 10, 100] if args.quick else [int(s) for s in args.sizes.split(",")]
    rounds = 100 if args.quick else max(100, args.rounds)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    rows = runner(run(sizes, rounds, args.warmup, not args.no_reference))
    print_table(
        "predict fan-out wall time (ms)",
        ["stack", "models", "rounds", "p50", "p99"],
        [[r["stack"], r["models"], r["rounds"], r["p50_ms"], r["p99_ms"]] for r in rows],
    )
    figures: dict[str, Any] = {"bench": "fanout", "repo": str(REPO_ROOT)}
    for row in rows:
        prefix = f"{row['stack'].replace(' ', '_')}_{row['models']}"
        figures[f"{prefix}_p50_ms"] = round(row["p50_ms"], 3)
        figures[f"{prefix}_p99_ms"] = round(row["p99_ms"], 3)
    top = max(sizes)
    ref = figures.get(f"reference_{top}_p50_ms")
    for stack in ("ours-fast", "ours-grpc"):
        ours = figures.get(f"{stack}_{top}_p50_ms")
        if ours and ref:
            figures[f"speedup_{stack}_{top}_p50"] = round(ref / ours, 2)
    print_json_line(figures)


if __name__ == "__main__":
    sys.exit(main())
