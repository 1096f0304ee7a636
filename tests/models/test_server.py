"""Our model server through a real grpcio client, over loopback, in its own process."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crunch_engine.models.protocol import codec, dynamic_subclass_pb2, dynamic_subclass_pb2_grpc
from tests.models.conftest import DEMO_MODELS, EXAMPLE_MODELS, StartServer

BASE = "crunch_engine.demo.tracker.TrackerBase"
MiB = 1024 * 1024
OPTIONS = [
    ("grpc.max_receive_message_length", 128 * MiB),
    ("grpc.max_send_message_length", 128 * MiB),
]


class Model:
    """A grpcio stub to one server, speaking Python values."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS)
        self.stub = dynamic_subclass_pb2_grpc.DynamicSubclassServiceStub(self.channel)

    def setup(self, class_name: str = BASE, *args: object, **kwargs: object) -> tuple[str, str]:
        positional, keywords = codec.build_arguments(args, kwargs)
        request = dynamic_subclass_pb2.SetupRequest(
            className=class_name, instanceArguments=positional, instanceKwArguments=keywords
        )
        status = self.stub.Setup(request, timeout=10).status
        return status.code, status.message

    def call(self, method: str, *args: object, **kwargs: object) -> tuple[str, str, object]:
        raw = codec.encode_call_request(method, args, kwargs)
        response = self.stub.Call(dynamic_subclass_pb2.CallRequest.FromString(raw), timeout=10)
        value = codec.from_variant(response.methodResponse)
        return response.status.code, response.status.message, value

    def health(self) -> int:
        request = health_pb2.HealthCheckRequest(service="")
        return health_pb2_grpc.HealthStub(self.channel).Check(request, timeout=5).status


@pytest.fixture
def model_at(start_server: StartServer) -> Iterator[object]:
    models: list[Model] = []

    def make(code_dir: Path, **kw: object) -> Model:
        _, port = start_server(code_dir, **kw)
        model = Model(port)
        models.append(model)
        return model

    yield make
    for model in models:
        model.channel.close()


def test_setup_then_calls_with_the_demo_model(model_at) -> None:
    model = model_at(DEMO_MODELS / "momentum")
    assert model.health() == health_pb2.HealthCheckResponse.SERVING
    assert model.call("predict", asset="BTC")[0] == "FAILED_PRECONDITION"
    assert model.setup() == ("SUCCESS", "Instance created successfully")
    assert model.setup()[1] == "Instance already exists"
    candles = {"BTC": [{"close": 100.0}, {"close": 101.0}]}
    assert model.call("tick", {"candles": candles})[:1] == ("SUCCESS",)
    code, _, value = model.call("predict", asset="BTC", horizon_seconds=60, not_accepted="dropped")
    assert code == "SUCCESS"
    assert value["p_up"] > 0.99


def test_setup_picks_the_first_subclass_outside_the_base_package(model_at) -> None:
    model = model_at(EXAMPLE_MODELS / "two_classes")
    assert model.setup(BASE, greeting="hi")[0] == "SUCCESS"
    assert model.call("predict")[2] == "hi from Mine"


@pytest.mark.parametrize(
    ("folder", "base", "code", "fragment"),
    [
        ("base_only", BASE, "BAD_IMPLEMENTATION", "no subclass"),
        ("broken_import", BASE, "BAD_IMPLEMENTATION", "module_that_does_not_exist"),
        ("bad_ctor", BASE, "SETUP_FAILED", "cannot start without a GPU"),
        ("raiser", "nowhere.module.Base", "BAD_IMPLEMENTATION", "cannot import base class"),
        ("raiser", "", "INVALID_ARGUMENT", "className"),
    ],
)
def test_setup_failures(model_at, folder: str, base: str, code: str, fragment: str) -> None:
    model = model_at(EXAMPLE_MODELS / folder)
    got_code, message = model.setup(base)
    assert got_code == code
    assert fragment in message


def test_call_statuses(model_at) -> None:
    model = model_at(EXAMPLE_MODELS / "unencodable")
    assert model.setup()[0] == "SUCCESS"
    code, message, _ = model.call("predict")
    assert (code, "unencodable" in message, "set" in message) == ("MODEL_FAILED", True, True)
    assert model.call("nested")[0] == "MODEL_FAILED"
    assert model.call("missing")[:2] == (
        "BAD_IMPLEMENTATION",
        'Method "missing" not found in class "Unencodable"',
    )
    assert model.call("")[0] == "INVALID_ARGUMENT"
    assert model.call("_private")[0] == "INVALID_ARGUMENT"
    assert model.call("flag")[2] == 1
    assert model.call("big_int")[2] == 2**70
    assert model.call("nothing") == ("SUCCESS", "", None)
    assert model.call("echo", 1, "two", None, k=[3]) == (
        "SUCCESS",
        "",
        [[1, "two", None], {"k": [3]}],
    )


def test_model_exception_message_is_kept(model_at) -> None:
    model = model_at(EXAMPLE_MODELS / "raiser")
    model.setup()
    code, message, _ = model.call("predict", asset="BTC")
    assert code == "MODEL_FAILED"
    assert "ValueError: boom: no prediction today" in message
    assert model.call("tick", {})[0] == "SUCCESS"  # the process survives


def test_unknown_kwargs_are_dropped_and_positions_respected(model_at) -> None:
    model = model_at(EXAMPLE_MODELS / "kwargs_only")
    model.setup()
    assert model.call("predict", asset="ETH", horizon_seconds=5, extra=1)[2] == {
        "asset": "ETH",
        "horizon": 5,
    }
    assert model.call("positional", 7, a=99, b=3)[2] == [7, 3]


def test_result_over_64_mib_is_a_model_failure_not_a_crash(model_at) -> None:
    model = model_at(EXAMPLE_MODELS / "huge")
    model.setup()
    code, message, _ = model.call("predict")
    assert code == "MODEL_FAILED"
    assert "message limit" in message
    assert model.call("small")[2] == "ok"


def test_large_results_and_requests_under_the_limit_flow(model_at) -> None:
    model = model_at(EXAMPLE_MODELS / "unencodable")
    model.setup()
    blob = "y" * (20 * MiB)
    code, _, value = model.call("echo", blob)
    assert code == "SUCCESS"
    assert value == [[blob], {}]


def test_request_over_64_mib_is_refused(model_at) -> None:
    model = model_at(EXAMPLE_MODELS / "unencodable")
    model.setup()
    with pytest.raises(grpc.RpcError) as error:
        model.call("echo", "z" * (65 * MiB))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert model.call("flag")[2] == 1


def test_overlapping_call_is_busy_while_health_answers(model_at) -> None:
    model = model_at(EXAMPLE_MODELS / "slow")
    model.setup()
    slow = threading.Thread(target=model.call, args=("predict",), kwargs={"seconds": 1.5})
    slow.start()
    time.sleep(0.3)
    try:
        with pytest.raises(grpc.RpcError) as error:
            model.call("predict", seconds=0.0)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.value.details() == "Server busy"
        began = time.monotonic()
        assert model.health() == health_pb2.HealthCheckResponse.SERVING
        assert time.monotonic() - began < 0.5
    finally:
        slow.join()
    assert model.call("predict", seconds=0.0)[0] == "SUCCESS"


def test_rest_forgets_the_instance(model_at) -> None:
    model = model_at(DEMO_MODELS / "momentum")
    model.setup()
    from google.protobuf import empty_pb2

    assert model.stub.Rest(empty_pb2.Empty(), timeout=5).status.code == "SUCCESS"
    assert model.call("predict", asset="BTC", horizon_seconds=1)[0] == "FAILED_PRECONDITION"


def test_watchdog_exits_86_when_a_call_overruns(start_server: StartServer) -> None:
    process, port = start_server(EXAMPLE_MODELS / "slow", extra=("--hard-limit-seconds", "0.5"))
    model = Model(port)
    model.setup()
    with pytest.raises(grpc.RpcError):
        model.call("predict", seconds=30)
    assert process.wait(10) == 86
    model.channel.close()


def test_sigterm_exits_cleanly(start_server: StartServer) -> None:
    process, port = start_server(DEMO_MODELS / "momentum")
    model = Model(port)
    model.setup()
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    model.channel.close()


def test_idle_rss_under_60_mb_and_no_grpcio(start_server: StartServer) -> None:
    process, port = start_server(DEMO_MODELS / "momentum")
    model = Model(port)
    model.setup()
    model.call("tick", {"candles": {"BTC": [{"close": 1.0}] * 100}})
    model.call("predict", asset="BTC", horizon_seconds=60)
    time.sleep(0.2)
    rss = psutil.Process(process.pid).memory_info().rss
    print(f"idle RSS of a momentum model server: {rss / MiB:.1f} MiB")
    assert rss < 60 * MiB
    maps = Path(f"/proc/{process.pid}/maps")
    if maps.exists():
        assert "cygrpc" not in maps.read_text()
    model.channel.close()


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "crunch_engine.models.server",
        "--code-dir",
        str(tmp_path / "nope"),
    ]
    assert subprocess.run(command, capture_output=True, timeout=30).returncode == 2
