"""The client's pipelining fast path against our servers, and its grpc.aio fallback."""

from __future__ import annotations

import asyncio
import time

import pytest

from crunch_engine.models.client import ModelClient
from crunch_engine.models.contracts import CallResult, CallStatus
from tests.models.conftest import DEMO_MODELS, EXAMPLE_MODELS, StartServer, endpoint
from tests.models.interop.servers import BASE_CLASS

TICK = {"candles": {"BTC": [{"close": 100.0 + i} for i in range(20)]}}
SCOPE = {"asset": "BTC", "horizon_seconds": 60}
MiB = 1024 * 1024


async def fleet(start_server: StartServer, models: dict[str, object], **options) -> ModelClient:
    client = ModelClient(base_classname=BASE_CLASS, **options)
    for model_id, code_dir in models.items():
        client.add_endpoint(endpoint(model_id, start_server(code_dir)[1]))
    await client.wait_ready(len(models), timeout=20)
    return client


def meaning(results: list[dict[str, CallResult]]) -> list[dict[str, tuple]]:
    """What must not depend on the transport: status, value, detail."""
    return [
        {m: (r.status, r.result, r.detail) for m, r in sorted(per_call.items())}
        for per_call in results
    ]


async def test_a_sequence_is_pipelined_and_means_the_same_as_separate_calls(
    start_server: StartServer,
) -> None:
    models = {
        "momentum": DEMO_MODELS / "momentum",
        "raiser": EXAMPLE_MODELS / "raiser",
        "bad_tick": EXAMPLE_MODELS / "bad_tick",
    }
    fast = await fleet(start_server, models)
    slow = await fleet(start_server, models, fast_path=False)
    assert all(slot.fast is not None for slot in fast._slots.values())
    assert all(slot.fast is None for slot in slow._slots.values())
    sequence = [("tick", [TICK], None), ("predict", [], SCOPE), ("predict", [], {**SCOPE})]
    piped = await fast.call_sequence(sequence, model_ids=[*models, "ghost"])
    separate = [await slow.call(m, a, k, model_ids=[*models, "ghost"]) for m, a, k in sequence]
    assert meaning(piped) == meaning(separate)
    tick, predict, _ = piped
    assert tick["bad_tick"].status is CallStatus.FAILED
    assert "tick exploded" in tick["bad_tick"].detail
    assert predict["bad_tick"].result == {"p_up": 0.25}  # a raising tick does not break it
    assert predict["raiser"].status is CallStatus.FAILED
    assert predict["momentum"].result["p_up"] > 0.99
    assert piped[0]["ghost"].status is CallStatus.ABSENT
    for position, per_call in enumerate(piped):
        for result in per_call.values():
            if result.status is not CallStatus.ABSENT:
                # Microseconds, per call. The first call is a loopback round trip; a later
                # one is the time since the previous answer, which can be ~0 when both
                # answers arrived in the same read.
                lowest = 5 if position == 0 else 0
                assert lowest <= result.exec_time_us < 2_000_000
                assert result.deployment_id == f"{result.model_id}_1"
    assert fast.health()["raiser"].counts == slow.health()["raiser"].counts
    assert fast.health()["raiser"].counts == {"SUCCESS": 1, "FAILED": 2}
    await fast.close()
    await slow.close()


async def test_failures_within_a_sequence_start_the_cooldown_like_separate_calls(
    start_server: StartServer,
) -> None:
    client = await fleet(start_server, {"raiser": EXAMPLE_MODELS / "raiser"}, failure_threshold=2)
    predict = ("predict", [], SCOPE)
    first, second, third = await client.call_sequence([predict, predict, predict])
    assert [r["raiser"].status for r in (first, second, third)] == [
        CallStatus.FAILED,
        CallStatus.FAILED,
        CallStatus.ABSENT,
    ]
    assert third["raiser"].detail.startswith("cooldown")
    await client.close()


async def test_a_timeout_mid_sequence_and_late_answers_are_discarded(
    start_server: StartServer,
) -> None:
    client = await fleet(
        start_server, {"slow": EXAMPLE_MODELS / "slow", "fast": DEMO_MODELS / "momentum"}
    )
    quick = ("predict", [], {"seconds": 0.0, **SCOPE})
    stuck = ("predict", [], {"seconds": 0.8, **SCOPE})
    await client.call_sequence([quick])  # the first call of a method runs on the thread
    began = time.perf_counter()
    results = await client.call_sequence([quick, stuck, quick], timeout=0.3)
    elapsed = time.perf_counter() - began
    assert [r["slow"].status for r in results] == [
        CallStatus.SUCCESS,
        CallStatus.TIMEOUT,
        CallStatus.TIMEOUT,
    ]
    assert "DEADLINE_EXCEEDED" in results[1]["slow"].detail
    assert "not run" in results[2]["slow"].detail
    assert [r["fast"].status for r in results] == [CallStatus.SUCCESS] * 3
    assert 0.3 <= elapsed < 0.7
    await asyncio.sleep(0.8)  # the stuck call ends; its (and any later) answer is dropped
    again = await client.call_sequence([quick, quick], timeout=2)
    assert [r["slow"].status for r in again] == [CallStatus.SUCCESS, CallStatus.SUCCESS]
    assert again[0]["slow"].result == {"p_up": 0.5, "slept": 0.0}
    assert client._slots["slow"].fast.pending == {}
    await client.close()


async def test_large_messages_both_ways_respect_flow_control(start_server: StartServer) -> None:
    client = await fleet(
        start_server,
        {"huge": EXAMPLE_MODELS / "huge", "echo": EXAMPLE_MODELS / "unencodable"},
        timeout=30,
    )
    size = 50 * MiB
    result = (await client.call("sized", [size], model_ids=["huge"]))["huge"]
    assert result.status is CallStatus.SUCCESS
    assert len(result.result) == size
    blob = "z" * (20 * MiB)
    echoed = (await client.call("echo", [blob], model_ids=["echo"]))["echo"]
    assert echoed.result == [[blob], {}]
    over = (await client.call("predict", model_ids=["huge"]))["huge"]
    assert over.status is CallStatus.FAILED
    assert "message limit" in over.detail
    assert client._slots["huge"].fast is not None
    await client.close()


async def test_a_stopped_server_falls_back_and_reports_timeouts(
    start_server: StartServer,
) -> None:
    client = ModelClient(base_classname=BASE_CLASS, timeout=1)
    process, port = start_server(DEMO_MODELS / "momentum")
    client.add_endpoint(endpoint("m", port))
    await client.wait_ready(1, timeout=20)
    fast = client._slots["m"].fast
    assert fast is not None and fast.usable
    process.terminate()
    assert await asyncio.to_thread(process.wait, 10) == 0
    await asyncio.sleep(0.1)
    assert not fast.usable  # GOAWAY, then the close
    result = (await client.call("predict", kwargs=SCOPE))["m"]
    assert result.status is CallStatus.TIMEOUT
    assert "UNAVAILABLE" in result.detail
    await client.close()


@pytest.mark.parametrize("fast_path", [True, False])
async def test_call_is_a_one_element_sequence(start_server: StartServer, fast_path: bool) -> None:
    client = await fleet(start_server, {"m": DEMO_MODELS / "momentum"}, fast_path=fast_path)
    assert await client.call_sequence([]) == []
    single = await client.call("predict", kwargs=SCOPE)
    assert single["m"].status is CallStatus.SUCCESS
    await client.close()
