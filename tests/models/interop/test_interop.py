"""Interop with CrunchDAO's packages, each installed into its own cached venv.

(a) The reference client (model-runner-client 0.14.0) discovers OUR model servers through
    a WebSocket announcer speaking the reference JSON and calls tick and predict.
(b) OUR client calls models served by the reference server (crunch-model-runner 0.4.2).
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest

from crunch_engine.models.client import ModelClient
from crunch_engine.models.contracts import CallStatus
from tests.models.conftest import DEMO_MODELS, EXAMPLE_MODELS, StartServer, endpoint
from tests.models.interop import refenv
from tests.models.interop.announcer import Announcer
from tests.models.interop.servers import BASE_CLASS, start_reference_server, stop, wait_port

pytestmark = pytest.mark.slow
DRIVER = Path(__file__).with_name("ref_client_driver.py")
CLOSES = [100.0 + i for i in range(20)]
TICK = {"candles": {"BTC": [{"close": c} for c in CLOSES]}}
SCOPE = {"asset": "BTC", "horizon_seconds": 60}


def expected_momentum() -> float:
    closes = CLOSES[-12:]
    return 1.0 / (1.0 + math.exp(-(closes[-1] / closes[0] - 1.0) * 2000.0))


async def run_reference_client(job: dict[str, Any]) -> dict[str, Any]:
    python = await asyncio.to_thread(refenv.client_python)
    process = await asyncio.create_subprocess_exec(
        str(python),
        str(DRIVER),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(job).encode()), 120)
    assert process.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_reference_client_calls_our_servers(
    start_server: StartServer, announcer: Announcer
) -> None:
    ports = {}
    for name in ("momentum", "noisy"):
        ports[name] = start_server(DEMO_MODELS / name)[1]
    ports["raiser"] = start_server(EXAMPLE_MODELS / "raiser")[1]
    await announcer.update(*(endpoint(name, port) for name, port in ports.items()))
    output = await run_reference_client(
        {
            "mode": "calls",
            "ws_port": announcer.port,
            "crunch_id": announcer.crunch_id,
            "base_class": BASE_CLASS,
            "expect": 3,
            "calls": [["tick", [TICK], {}], ["predict", [], SCOPE]],
        }
    )
    tick, predict = output["results"]
    assert {r["status"] for r in tick.values()} == {"SUCCESS"}
    assert tick["momentum"]["result"] is None
    assert predict["momentum"]["status"] == "SUCCESS"
    assert predict["momentum"]["result"]["p_up"] == pytest.approx(expected_momentum())
    assert 0.05 <= predict["noisy"]["result"]["p_up"] <= 0.95
    assert predict["raiser"]["status"] == "FAILED"
    assert predict["momentum"]["exec_time_us"] > 0


async def test_our_client_calls_the_reference_server(tmp_path: Path) -> None:
    python = await asyncio.to_thread(refenv.server_python)
    started = [
        start_reference_server(python, DEMO_MODELS / "momentum"),
        start_reference_server(python, EXAMPLE_MODELS / "raiser"),
    ]
    try:
        for process, port in started:
            await asyncio.to_thread(wait_port, port, process, 60)
        client = ModelClient(base_classname=BASE_CLASS, timeout=5)
        client.add_endpoint(endpoint("momentum", started[0][1]))
        client.add_endpoint(endpoint("raiser", started[1][1]))
        await client.wait_ready(2, timeout=30)
        ticks = await client.call("tick", [TICK])
        assert {r.status for r in ticks.values()} == {CallStatus.SUCCESS}
        results = await client.call("predict", kwargs=SCOPE)
        assert results["momentum"].status is CallStatus.SUCCESS
        assert results["momentum"].result["p_up"] == pytest.approx(expected_momentum())
        assert results["raiser"].status is CallStatus.FAILED
        assert "MODEL_FAILED" in results["raiser"].detail
        assert "boom: no prediction today" in results["raiser"].detail
        # The reference server does not advertise pipelining: grpc.aio, call after call.
        assert [slot.fast for slot in client._slots.values()] == [None, None]
        tick, predict = await client.call_sequence([("tick", [TICK], None), ("predict", [], SCOPE)])
        assert {r.status for r in tick.values()} == {CallStatus.SUCCESS}
        assert predict["momentum"].result["p_up"] == pytest.approx(expected_momentum())
        assert predict["raiser"].status is CallStatus.FAILED
        assert predict["momentum"].exec_time_us > 0
        await client.close()
    finally:
        stop([process for process, _ in started])
