"""Drive CrunchDAO's reference client (model-runner-client 0.14.0) from its own venv.

Run with that venv's python; reads a JSON job on stdin and prints one JSON line:

- ``{"mode": "calls", "ws_port", "crunch_id", "base_class", "expect", "calls": [[method,
  args, kwargs], ...]}`` -> ``{"results": [{model_id: {status, result, exec_time_us,
  detail}}, ...]}``, one dict per call.
- ``{"mode": "bench", ..., "rounds": R, "warmup": W, "call": [method, args, kwargs]}`` ->
  ``{"wall_ms": [...]}``, the wall time of each measured round.

It only imports the reference package and the standard library (not our code).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from model_runner_client.grpc.generated.commons_pb2 import Argument, KwArgument, Variant
from model_runner_client.model_concurrent_runners.dynamic_subclass_model_concurrent_runner import (
    DynamicSubclassModelConcurrentRunner,
)
from model_runner_client.utils.datatype_transformer import detect_data_type, encode_data


def variant(value: Any) -> Variant:
    kind = detect_data_type(value)
    return Variant(type=kind, value=encode_data(kind, value))


def arguments(args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Argument], list[KwArgument]]:
    return (
        [Argument(position=i, data=variant(v)) for i, v in enumerate(args)],
        [KwArgument(keyword=k, data=variant(v)) for k, v in kwargs.items()],
    )


async def main(job: dict[str, Any]) -> dict[str, Any]:
    runner = DynamicSubclassModelConcurrentRunner(
        timeout=job.get("timeout", 5),
        crunch_id=job["crunch_id"],
        host="127.0.0.1",
        port=job["ws_port"],
        base_classname=job["base_class"],
        report_failure=False,
    )
    await runner.init()
    sync = asyncio.create_task(runner.sync())
    deadline = time.monotonic() + job.get("ready_timeout", 60)
    while len(runner.model_cluster.models_run) < job["expect"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(runner.model_cluster.models_run)} models ready")
        await asyncio.sleep(0.05)

    async def call(method: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        results = await runner.call(method, arguments(args, kwargs))
        return {
            runner_.model_id: {
                "status": result.status.value,
                "result": result.result,
                "exec_time_us": result.exec_time_us,
                "detail": result.detail,
            }
            for runner_, result in results.items()
        }

    try:
        if job["mode"] == "calls":
            return {"results": [await call(*spec) for spec in job["calls"]]}
        walls = []
        for index in range(job.get("warmup", 10) + job["rounds"]):
            started = time.perf_counter()
            results = await call(*job["call"])
            elapsed = (time.perf_counter() - started) * 1000
            if index >= job.get("warmup", 10):
                walls.append(elapsed)
        ok = sum(r["status"] == "SUCCESS" for r in results.values())
        return {"wall_ms": walls, "last_success": ok}
    finally:
        sync.cancel()
        await runner.model_cluster.ws_client.disconnect()


if __name__ == "__main__":
    output = asyncio.run(main(json.loads(sys.stdin.read())))
    print(json.dumps(output), flush=True)
