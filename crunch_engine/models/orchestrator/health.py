"""The gRPC health probe: a model is RUNNING only once its server answers SERVING.

The reference orchestrator announces RUNNING when the container starts, and clients
then wait 10 s per failed connection attempt; asking the standard health service first
means a client never sees a model that cannot answer yet.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

CHANNEL_OPTIONS = (
    # Retry a refused connection quickly while the server starts (defaults: 1 s, 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.enable_retries", 0),
)


class HealthProbe:
    """One channel to one model server; ``check`` never raises."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self.last_error: str | None = None

    async def check(self, seconds: float) -> bool:
        """True when the server reports SERVING for the overall service ("")."""
        try:
            reply = await self._stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=seconds, wait_for_ready=True
            )
        except grpc.aio.AioRpcError as exc:
            self.last_error = f"{exc.code().name}: {exc.details()}"
            return False
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            self.last_error = (
                f"health status {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
            )
            return False
        self.last_error = None
        return True

    async def close(self) -> None:
        await self._channel.close(grace=None)
