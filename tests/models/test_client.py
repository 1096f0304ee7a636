"""The engine's ModelClient against real model server processes over loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

from crunch_engine.models.client import ModelClient
from crunch_engine.models.contracts import CallStatus
from tests.models.conftest import DEMO_MODELS, EXAMPLE_MODELS, StartServer, endpoint
from tests.models.interop.announcer import Announcer
from tests.models.interop.servers import BASE_CLASS, free_port

TICK = {"candles": {"BTC": [{"close": 100.0 + i} for i in range(20)]}}
SCOPE = {"asset": "BTC", "horizon_seconds": 60, "step_seconds": 60}


async def demo_fleet(start_server: StartServer, client: ModelClient) -> list[str]:
    names = ["momentum", "mean_reversion", "noisy"]
    for name in names:
        _, port = start_server(DEMO_MODELS / name)
        client.add_endpoint(endpoint(name, port))
    await client.wait_ready(len(names), timeout=20)
    return names


async def test_fan_out_to_the_demo_models(start_server: StartServer) -> None:
    client = ModelClient(base_classname=BASE_CLASS)
    names = await demo_fleet(start_server, client)
    assert sorted(client.ready_model_ids()) == sorted(names)
    ticks = await client.call("tick", [TICK])
    assert {r.status for r in ticks.values()} == {CallStatus.SUCCESS}
    results = await client.call("predict", kwargs=SCOPE)
    assert set(results) == set(names)
    for model_id, result in results.items():
        assert result.status is CallStatus.SUCCESS, result
        assert 0.0 <= result.result["p_up"] <= 1.0
        assert result.model_id == model_id
        assert result.deployment_id == f"{model_id}_1"
        # microseconds: a loopback gRPC round trip takes more than 20 us and far less than 2 s
        assert 20 < result.exec_time_us < 2_000_000
    assert results["momentum"].result["p_up"] > 0.99  # a rising series
    assert results["mean_reversion"].result["p_up"] < 0.5
    health = client.health()["momentum"]
    assert health.counts == {"SUCCESS": 2}
    assert len(health.latencies_us) == 2
    await client.close()


async def test_absent_models_say_why(start_server: StartServer) -> None:
    client = ModelClient(base_classname=BASE_CLASS, setup_timeout=0.5)
    _, port = start_server(DEMO_MODELS / "momentum")
    client.add_endpoint(endpoint("up", port))
    client.add_endpoint(endpoint("stopped", port, state="STOPPED"))
    client.add_endpoint(endpoint("nobody-listens", free_port()))
    await client.wait_ready(1, timeout=10)
    results = await client.call(
        "predict", kwargs=SCOPE, model_ids=["up", "stopped", "nobody-listens", "ghost"]
    )
    assert results["up"].status is CallStatus.SUCCESS
    assert results["stopped"].status is CallStatus.ABSENT
    assert "not running (STOPPED)" in results["stopped"].detail
    assert results["nobody-listens"].status is CallStatus.ABSENT
    assert (
        results["nobody-listens"].detail in ("connecting",)
        or "setup failed" in results["nobody-listens"].detail
    )
    assert results["ghost"].status is CallStatus.ABSENT
    assert results["ghost"].detail == "unknown model"
    await asyncio.sleep(0.8)  # the setup deadline passes
    later = await client.call("predict", kwargs=SCOPE, model_ids=["nobody-listens"])
    assert "CONNECTION_FAILED" in later["nobody-listens"].detail
    assert {m.model_id for m in client.known_models()} == {"up", "stopped", "nobody-listens"}
    client.remove_model("up")
    assert client.ready_model_ids() == []
    await client.close()


async def test_setup_failure_is_not_ready(start_server: StartServer) -> None:
    client = ModelClient(base_classname=BASE_CLASS)
    _, port = start_server(EXAMPLE_MODELS / "base_only")
    client.add_endpoint(endpoint("bad", port))
    with pytest.raises(TimeoutError):
        await client.wait_ready(1, timeout=1.5)
    result = (await client.call("predict"))["bad"]
    assert result.status is CallStatus.ABSENT
    assert "BAD_IMPLEMENTATION" in result.detail
    await client.close()


async def test_failures_cool_a_model_down_per_method_without_slowing_others(
    start_server: StartServer,
) -> None:
    client = ModelClient(base_classname=BASE_CLASS, failure_threshold=3, cooldown_seconds=30)
    _, good = start_server(DEMO_MODELS / "momentum")
    _, bad = start_server(EXAMPLE_MODELS / "raiser")
    client.add_endpoint(endpoint("good", good))
    client.add_endpoint(endpoint("raiser", bad))
    await client.wait_ready(2, timeout=20)
    for round_ in range(3):
        results = await client.call("predict", kwargs=SCOPE)
        assert results["good"].status is CallStatus.SUCCESS
        assert results["raiser"].status is CallStatus.FAILED
        assert "boom: no prediction today" in results["raiser"].detail
        if round_ < 2:  # a working tick does not reset predict's streak
            assert (await client.call("tick", [TICK]))["raiser"].status is CallStatus.SUCCESS
    results = await client.call("predict", kwargs=SCOPE)
    assert results["good"].status is CallStatus.SUCCESS
    assert results["raiser"].status is CallStatus.ABSENT
    assert results["raiser"].detail.startswith("cooldown")
    assert "3 consecutive failures of predict" in results["raiser"].detail
    health = client.health()["raiser"]
    assert health.counts["FAILED"] == 3
    assert "boom" in (health.last_error or "")
    await client.close()


async def test_timeouts_cool_down_and_are_reported(
    start_server: StartServer, announcer: Announcer
) -> None:
    _, slow = start_server(EXAMPLE_MODELS / "slow")
    _, fast = start_server(DEMO_MODELS / "momentum")
    await announcer.update(endpoint("slow", slow), endpoint("fast", fast))
    client = ModelClient(
        base_classname=BASE_CLASS, timeout=0.3, failure_threshold=2, cooldown_seconds=60
    )
    await client.connect_orchestrator("127.0.0.1", announcer.port, announcer.crunch_id)
    await client.wait_ready(2, timeout=20)
    kinds = []
    for _ in range(2):
        results = await client.call("predict", kwargs={**SCOPE, "seconds": 0.6})
        kinds.append(results["slow"].status)
        assert results["fast"].status is CallStatus.SUCCESS
        await asyncio.sleep(0.5)  # let the slow model finish (it answers "busy" meanwhile)
    assert kinds == [CallStatus.TIMEOUT, CallStatus.TIMEOUT]
    began = time.perf_counter()
    results = await client.call("predict", kwargs={**SCOPE, "seconds": 0.6})
    assert time.perf_counter() - began < 0.25  # the cooled-down model is not waited for
    assert results["slow"].status is CallStatus.ABSENT
    assert results["fast"].status is CallStatus.SUCCESS
    await asyncio.wait_for(announcer.report_event.wait(), 5)
    assert announcer.reports[0]["model_id"] == "slow"
    assert announcer.reports[0]["failure_code"] == "MULTIPLE_TIMEOUT"
    assert announcer.reports[0]["ip"] == "127.0.0.1"
    await client.close()


async def test_discovery_follows_deployments_and_reconnects(
    start_server: StartServer, announcer: Announcer
) -> None:
    _, first = start_server(DEMO_MODELS / "momentum")
    _, second = start_server(DEMO_MODELS / "noisy")
    _, bad = start_server(EXAMPLE_MODELS / "base_only")
    await announcer.update(endpoint("m", first, deployment="1"), endpoint("bad", bad))
    client = ModelClient(base_classname=BASE_CLASS)
    await client.connect_orchestrator("127.0.0.1", announcer.port, announcer.crunch_id)
    await client.wait_ready(1, timeout=20)
    await asyncio.wait_for(announcer.report_event.wait(), 10)
    assert announcer.reports[0]["failure_code"] == "BAD_IMPLEMENTATION"
    assert (await client.call("predict", kwargs=SCOPE, model_ids=["m"]))["m"].deployment_id == "m_1"

    # A stale STOPPED about another run is ignored; a newer RUNNING run replaces ours.
    await announcer.update(endpoint("m", second, deployment="0", state="STOPPED"))
    await asyncio.sleep(0.2)
    assert "m" in client.ready_model_ids()
    await announcer.update(endpoint("m", second, deployment="2"))
    await asyncio.sleep(0.1)
    await client.wait_ready(1, timeout=10)
    result = (await client.call("predict", kwargs=SCOPE, model_ids=["m"]))["m"]
    assert (result.status, result.deployment_id) == (CallStatus.SUCCESS, "m_2")
    assert client.health()["m"].restarts == 1

    # The socket drops: the client reconnects and the init event brings the same fleet.
    await announcer.drop_clients()
    await asyncio.sleep(1.0)
    assert announcer.clients, "the client did not reconnect"
    assert (await client.call("predict", kwargs=SCOPE, model_ids=["m"]))[
        "m"
    ].status is CallStatus.SUCCESS

    # Our run stops: ABSENT with the reason, still known.
    await announcer.update(endpoint("m", second, deployment="2", state="STOPPED"))
    await asyncio.sleep(0.2)
    result = (await client.call("predict", kwargs=SCOPE, model_ids=["m"]))["m"]
    assert result.status is CallStatus.ABSENT
    assert "STOPPED" in result.detail
    assert [m.state.value for m in client.known_models() if m.model_id == "m"] == ["STOPPED"]
    await client.close()


async def test_unknown_crunch_is_refused(announcer: Announcer) -> None:
    from crunch_engine.models.client import OrchestratorError

    client = ModelClient(base_classname=BASE_CLASS)
    with pytest.raises(OrchestratorError):
        await client.connect_orchestrator("127.0.0.1", announcer.port, "not-this-one")
    await client.close()
