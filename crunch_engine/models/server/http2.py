"""A lean gRPC-over-HTTP/2 server: asyncio (uvloop) + the sans-IO ``h2`` library.

Why not grpcio: its per-call server cost, times 100 model processes sharing two cores,
dominates the fan-out latency, and importing it costs ~30 MB per process. The gRPC wire
format of unary calls is small: a POST with ``content-type: application/grpc``, one
length-prefixed message each way, and ``grpc-status`` / ``grpc-message`` in trailers.

One call at a time: Setup / Call / Rest run in the single worker thread; a call arriving
while one runs is answered RESOURCE_EXHAUSTED "Server busy" at once (not queued). Health
checks are answered by the event loop, even while user code runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.stream import StreamState

logger = logging.getLogger("crunch_engine.models.server")

# gRPC status codes used here.
OK, UNKNOWN, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL, NOT_FOUND = 0, 2, 8, 12, 13, 5

SETUP_PATH = b"/dynamic_subclass.DynamicSubclassService/Setup"
CALL_PATH = b"/dynamic_subclass.DynamicSubclassService/Call"
REST_PATH = b"/dynamic_subclass.DynamicSubclassService/Rest"
HEALTH_CHECK_PATH = b"/grpc.health.v1.Health/Check"
_SERVING = b"\x08\x01"  # HealthCheckResponse(status=SERVING)

# hpack logs every header it decodes at DEBUG (~27 calls per request): switch it off.
logging.getLogger("hpack").disabled = True

_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)
_WINDOW = 8 * 1024 * 1024
_RESPONSE_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]
_OK_TRAILERS = [(b"grpc-status", b"0")]

_RequestReceived = h2.events.RequestReceived
_DataReceived = h2.events.DataReceived
_StreamEnded = h2.events.StreamEnded
_StreamReset = h2.events.StreamReset
_WindowUpdated = h2.events.WindowUpdated
_ConnectionTerminated = h2.events.ConnectionTerminated
_HALF_CLOSED_LOCAL = StreamState.HALF_CLOSED_LOCAL


def percent_encode(message: str) -> bytes:
    """grpc-message encoding: printable ASCII except '%' as is, other UTF-8 bytes as %XX."""
    raw = message.encode("utf-8", "replace")
    if all(0x20 <= b <= 0x7E and b != 0x25 for b in raw):
        return raw
    return b"".join(bytes((b,)) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b for b in raw)


class Worker:
    """The single thread running user code; ``started_at`` feeds the watchdog."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.started_at = 0.0
        self.running = ""
        threading.Thread(target=self._run, name="model-worker", daemon=True).start()

    def submit(self, name: str, job: Callable[[bytes], bytes], payload: bytes, done: Any) -> None:
        self.jobs.put((name, job, payload, done))

    def _run(self) -> None:
        get, monotonic, call_soon = self.jobs.get, time.monotonic, self.loop.call_soon_threadsafe
        while True:
            name, job, payload, done = get()
            self.running = name
            self.started_at = monotonic()
            try:
                result: bytes | BaseException = job(payload)
            except BaseException as error:  # reported as UNKNOWN by the loop
                result = error
            self.started_at = 0.0
            try:
                call_soon(done, result)
            except RuntimeError:  # the loop is closed: shutting down
                return


def start_watchdog(worker: Worker, hard_limit: float, exit_code: int = 86) -> None:
    """Exit the process when one call runs past ``hard_limit`` seconds.

    A Python thread cannot be interrupted; the orchestrator restarts the process.
    """

    def watch() -> None:
        period = min(1.0, max(0.05, hard_limit / 10))
        while True:
            time.sleep(period)
            started = worker.started_at
            if started and time.monotonic() - started > hard_limit:
                logger.critical(
                    "%s has run for more than %.1f s (hard limit): exiting with code %d",
                    worker.running or "a call",
                    hard_limit,
                    exit_code,
                )
                for handler in logging.getLogger().handlers:
                    handler.flush()
                os._exit(exit_code)

    threading.Thread(target=watch, name="model-watchdog", daemon=True).start()


class GrpcServer:
    """State shared by all connections of one model process."""

    def __init__(
        self,
        handlers: dict[bytes, tuple[str, Callable[[bytes], bytes]]],
        worker: Worker,
        *,
        max_message_bytes: int,
    ) -> None:
        self.handlers = handlers
        self.worker = worker
        self.max_message_bytes = max_message_bytes
        self.busy = False
        self.connections: set[GrpcConnection] = set()

    def protocol(self) -> GrpcConnection:
        return GrpcConnection(self)

    def goaway_all(self) -> None:
        for connection in list(self.connections):
            connection.goaway()


class _Stream:
    __slots__ = ("answered", "buffer", "path")

    def __init__(self, path: bytes) -> None:
        self.path = path
        self.buffer = bytearray()
        self.answered = False


class GrpcConnection(asyncio.Protocol):
    """One HTTP/2 connection: frames in, gRPC calls dispatched, responses out."""

    def __init__(self, server: GrpcServer) -> None:
        self.server = server
        self.h2 = h2.connection.H2Connection(config=_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.outgoing: dict[int, list[Any]] = {}  # stream -> [memoryview, offset], window-blocked

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000,
            },
        )
        # Accept frames up to the advertised size at once: a client may send them in the
        # same read as its SETTINGS ACK, which h2 only applies after that read.
        self.h2.max_inbound_frame_size = 1 << 20
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_WINDOW)
        self.server.connections.add(self)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.streams.clear()
        self.outgoing.clear()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            logger.debug("HTTP/2 protocol error: %s", error)
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            kind = type(event)
            if kind is _DataReceived:
                self._on_data(event)
            elif kind is _RequestReceived:
                self._on_request(event)
            elif kind is _StreamEnded:
                self._on_end(event.stream_id)
            elif kind is _WindowUpdated:
                self._send_pending()
            elif kind is _StreamReset:
                self.streams.pop(event.stream_id, None)
                self.outgoing.pop(event.stream_id, None)
            elif kind is _ConnectionTerminated:
                self._flush()
                if self.transport is not None:
                    self.transport.close()
                return
        self._flush()

    # -- requests ------------------------------------------------------------------------

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        headers = dict(event.headers)
        stream_id = event.stream_id
        content_type = headers.get(b"content-type", b"")
        if headers.get(b":method") != b"POST" or not content_type.startswith(b"application/grpc"):
            self.h2.send_headers(stream_id, [(b":status", b"415")], end_stream=True)
            return
        stream = self.streams[stream_id] = _Stream(headers.get(b":path", b""))
        if event.stream_ended is not None:
            self._on_end(stream_id)
        elif stream.path not in self.server.handlers and stream.path != HEALTH_CHECK_PATH:
            self._trailers_only(stream, stream_id, UNIMPLEMENTED, f"unknown method {stream.path!r}")

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        if event.flow_controlled_length:
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        stream = self.streams.get(stream_id)
        if stream is None or stream.answered:
            return
        stream.buffer += event.data
        if len(stream.buffer) > self.server.max_message_bytes + 5:
            stream.buffer = bytearray()
            limit = self.server.max_message_bytes
            message = f"received message larger than max ({limit} bytes)"
            self._trailers_only(stream, stream_id, RESOURCE_EXHAUSTED, message)

    def _on_end(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.answered:
            self.streams.pop(stream_id, None)
            return
        buffer = stream.buffer
        if len(buffer) < 5:
            self._trailers_only(stream, stream_id, INTERNAL, "missing request message")
            return
        if buffer[0]:
            message = "compressed messages are not supported (use identity encoding)"
            self._trailers_only(stream, stream_id, UNIMPLEMENTED, message)
            return
        if int.from_bytes(buffer[1:5], "big") + 5 != len(buffer):
            self._trailers_only(stream, stream_id, INTERNAL, "expected exactly one request message")
            return
        payload = bytes(buffer[5:])
        stream.buffer = bytearray()
        if stream.path == HEALTH_CHECK_PATH:
            self._on_health_check(stream, stream_id, payload)
            return
        handler = self.server.handlers.get(stream.path)
        if handler is None:
            self._trailers_only(stream, stream_id, UNIMPLEMENTED, f"unknown method {stream.path!r}")
            return
        server = self.server
        if server.busy:
            self._trailers_only(stream, stream_id, RESOURCE_EXHAUSTED, "Server busy")
            return
        server.busy = True
        stream.answered = True  # the worker answers; nothing else may
        name, job = handler

        def done(result: bytes | BaseException) -> None:
            server.busy = False
            self._on_result(stream_id, result)

        server.worker.submit(name, job, payload, done)

    def _on_health_check(self, stream: _Stream, stream_id: int, payload: bytes) -> None:
        # HealthCheckRequest { string service = 1; }: "" (empty message) is the server itself.
        if payload not in (b"", b"\n\x00"):
            self._trailers_only(stream, stream_id, NOT_FOUND, "unknown service")
            return
        stream.answered = True
        self._respond(stream_id, _SERVING)

    def _on_result(self, stream_id: int, result: bytes | BaseException) -> None:
        if self.transport is None or stream_id not in self.streams:
            return  # the client went away (deadline, cancel): drop the answer
        if isinstance(result, BaseException):
            self._trailers_only(self.streams[stream_id], stream_id, UNKNOWN, repr(result))
        else:
            self._respond(stream_id, result)
        self._flush()

    # -- responses -----------------------------------------------------------------------

    def _respond(self, stream_id: int, payload: bytes) -> None:
        conn = self.h2
        try:
            conn.send_headers(stream_id, _RESPONSE_HEADERS)
            message = b"\x00" + len(payload).to_bytes(4, "big") + payload
            if len(message) <= min(
                conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size
            ):
                conn.send_data(stream_id, message)
                conn.send_headers(stream_id, _OK_TRAILERS, end_stream=True)
                self.streams.pop(stream_id, None)
            else:
                self.outgoing[stream_id] = [memoryview(message), 0]
                self._send_pending()
        except h2.exceptions.StreamClosedError:
            self.streams.pop(stream_id, None)

    def _send_pending(self) -> None:
        """Send what flow control allows of window-blocked responses, then their trailers."""
        conn = self.h2
        for stream_id, state in list(self.outgoing.items()):
            data, offset = state
            try:
                while offset < len(data):
                    size = min(
                        conn.local_flow_control_window(stream_id),
                        conn.max_outbound_frame_size,
                        len(data) - offset,
                    )
                    if size <= 0:
                        break
                    conn.send_data(stream_id, data[offset : offset + size])
                    offset += size
                state[1] = offset
                if offset >= len(data):
                    conn.send_headers(stream_id, _OK_TRAILERS, end_stream=True)
                    del self.outgoing[stream_id]
                    self.streams.pop(stream_id, None)
            except h2.exceptions.StreamClosedError:
                self.outgoing.pop(stream_id, None)
                self.streams.pop(stream_id, None)

    def _trailers_only(self, stream: _Stream, stream_id: int, status: int, message: str) -> None:
        stream.answered = True
        headers = [
            *_RESPONSE_HEADERS,
            (b"grpc-status", str(status).encode()),
            (b"grpc-message", percent_encode(message)),
        ]
        try:
            self.h2.send_headers(stream_id, headers, end_stream=True)
        except h2.exceptions.StreamClosedError:
            self.streams.pop(stream_id, None)
            return
        h2_stream = self.h2.streams.get(stream_id)
        if h2_stream is not None and h2_stream.state_machine.state is _HALF_CLOSED_LOCAL:
            # The client may still be sending a (too large) request: tell it to stop.
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self.h2.reset_stream(stream_id, ErrorCodes.NO_ERROR)
        self.streams.pop(stream_id, None)

    def goaway(self) -> None:
        if self.transport is not None:
            self.h2.close_connection()
            self._flush()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)
