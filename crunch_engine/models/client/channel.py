"""One grpc.aio channel per model deployment, with pre-built multicallables.

Requests are passed as already serialised bytes (``request_serializer=None``): the
fan-out encodes a CallRequest once and sends the same bytes to every model.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import grpc.aio

from crunch_engine.models.protocol import dynamic_subclass_pb2

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SETUP_PATH = "/dynamic_subclass.DynamicSubclassService/Setup"
CALL_PATH = "/dynamic_subclass.DynamicSubclassService/Call"
REST_PATH = "/dynamic_subclass.DynamicSubclassService/Rest"

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Reconnect fast: a restarted model is back within a second or two.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
    # Loopback or a LAN: no need to probe bandwidth with pings on every call.
    ("grpc.http2.bdp_probe", 0),
    ("grpc.keepalive_time_ms", 300_000),
]

# Retry Setup on these: the port is not accepting yet, or another caller holds the model.
_SETUP_RETRY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}


class SetupError(Exception):
    """Setup did not succeed. ``code`` is the model's Status.code or CONNECTION_FAILED."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ModelChannel:
    """The connection to one deployment: Setup once, then unary Calls on raw bytes."""

    __slots__ = (
        "address",
        "call",
        "channel",
        "host",
        "pipeline_depth",
        "port",
        "rest",
        "setup_rpc",
    )

    def __init__(self, ip: str, port: int) -> None:
        host = f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip
        self.address = f"{host}:{port}"
        self.host = ip.strip("[]")
        self.port = port
        self.pipeline_depth = 0
        """Calls the server queues per connection (its Setup's x-crunch-pipeline; 0: none)."""
        self.channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        self.setup_rpc = self.channel.unary_unary(
            SETUP_PATH,
            request_serializer=None,
            response_deserializer=dynamic_subclass_pb2.SetupResponse.FromString,
            _registered_method=True,
        )
        self.call = self.channel.unary_unary(
            CALL_PATH,
            request_serializer=None,
            response_deserializer=dynamic_subclass_pb2.CallResponse.FromString,
            _registered_method=True,
        )
        self.rest = self.channel.unary_unary(
            REST_PATH,
            request_serializer=None,
            response_deserializer=dynamic_subclass_pb2.RestResponse.FromString,
            _registered_method=True,
        )

    async def setup(self, class_name: str, within: float) -> str:
        """Run Setup, retrying while the server is not reachable, for at most ``within`` seconds.

        Returns the status message on SUCCESS (and records the server's pipelining
        capability in ``pipeline_depth``); raises SetupError otherwise.
        """
        request = dynamic_subclass_pb2.SetupRequest(className=class_name).SerializeToString()
        deadline = time.monotonic() + within
        last = "no answer"
        delay = 0.05
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SetupError("CONNECTION_FAILED", f"{self.address}: {last}")
            try:
                call = self.setup_rpc(request, timeout=remaining, wait_for_ready=True)
                response = await call
                metadata = await call.initial_metadata()
            except grpc.aio.AioRpcError as error:
                last = f"{error.code().name}: {error.details()}"
                if (
                    error.code() not in _SETUP_RETRY
                    and error.code() != grpc.StatusCode.DEADLINE_EXCEEDED
                ):
                    raise SetupError("CONNECTION_FAILED", f"{self.address}: {last}") from error
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)
                continue
            if response.status.code == "SUCCESS":
                self.pipeline_depth = _pipeline_depth(metadata)
                return response.status.message
            raise SetupError(response.status.code or "UNKNOWN", response.status.message)

    async def close(self) -> None:
        await self.channel.close(grace=None)


def _pipeline_depth(metadata: object) -> int:
    """The x-crunch-pipeline value of Setup's response headers (0 when absent or bad)."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "x-crunch-pipeline":
            text = value.decode() if isinstance(value, bytes) else str(value)
            return int(text) if text.isdigit() else 0
    return 0
