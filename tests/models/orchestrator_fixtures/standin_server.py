"""Stand-in for ``python -m crunch_engine.models.server`` while that module does not exist.

Same command line, real gRPC: the standard health service ("" -> SERVING) and the
DynamicSubclassService paths with raw bytes (Setup answers an empty SetupResponse,
Call with methodName "hang" never returns). A watchdog exits 86 when a call runs longer
than --hard-limit-seconds; SIGTERM exits 0. The orchestrator tests run against the real
server as soon as it exists (see support.server_entry).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVICE = "dynamic_subclass.DynamicSubclassService"
WATCHDOG_EXIT_CODE = 86


def method_name(request: bytes) -> str:
    """Field 1 (string) of a CallRequest, decoded by hand (no generated stubs here)."""
    if len(request) < 2 or request[0] != 0x0A:
        return ""
    length, shift, index = 0, 0, 1
    while True:
        byte = request[index]
        length |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            break
        shift += 7
    return request[index : index + length].decode()


class Watchdog:
    def __init__(self, hard_limit: float) -> None:
        self.hard_limit = hard_limit
        self.calls: dict[int, float] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            with self.lock:
                oldest = min(self.calls.values(), default=None)
            if oldest is not None and time.monotonic() - oldest > self.hard_limit:
                print("watchdog: call over the hard limit", flush=True)
                os._exit(WATCHDOG_EXIT_CODE)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--hard-limit-seconds", type=float, default=30.0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    watchdog = Watchdog(args.hard_limit_seconds)

    def setup(request: bytes, context: grpc.ServicerContext) -> bytes:
        return b""

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        key = threading.get_ident()
        with watchdog.lock:
            watchdog.calls[key] = time.monotonic()
        try:
            if method_name(request) == "hang":
                time.sleep(3600)
            return b""
        finally:
            with watchdog.lock:
                watchdog.calls.pop(key, None)

    handlers = {
        "Setup": grpc.unary_unary_rpc_method_handler(setup),
        "Call": grpc.unary_unary_rpc_method_handler(call),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(args.address)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    server.start()
    print(f"stand-in model server on {args.address} code={args.code_dir}", flush=True)
    stopped.wait()
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
