"""The gRPC server side of one HTTP/2 connection, on the hand-written framing.

Unary gRPC only: a POST with ``content-type: application/grpc``, one length-prefixed
message each way, ``grpc-status`` / ``grpc-message`` in trailers. Response headers and
trailers are constant, pre-encoded header blocks (literal without indexing, no Huffman);
request header blocks go through ``HeaderBlockDecoder`` (cached when context-free).
Calls are handed to the process's ``Dispatcher``; health checks are answered here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from crunch_engine.models.server import framing as f
from crunch_engine.models.server.dispatch import Dispatcher, Job, call_method_key
from crunch_engine.models.server.endpoint import ConnectionError_, H2Endpoint
from crunch_engine.models.server.hpack_cache import HeaderBlockDecoder, HeaderBlockError

logger = logging.getLogger("crunch_engine.models.server")

SETUP_PATH = b"/dynamic_subclass.DynamicSubclassService/Setup"
CALL_PATH = b"/dynamic_subclass.DynamicSubclassService/Call"
REST_PATH = b"/dynamic_subclass.DynamicSubclassService/Rest"
HEALTH_CHECK_PATH = b"/grpc.health.v1.Health/Check"
_SERVING = b"\x08\x01"  # HealthCheckResponse(status=SERVING)

_HEAD_BLOCK = f.STATUS_200 + f.CONTENT_TYPE_GRPC
_OK_TRAILER_BLOCK = f.literal(b"grpc-status", b"0")


def _trailers_only_block(status: int, message: str) -> bytes:
    return (
        _HEAD_BLOCK
        + f.literal(b"grpc-status", str(status).encode())
        + f.literal(b"grpc-message", f.percent_encode(message))
    )


class GrpcServer:
    """State shared by all connections of one model process."""

    def __init__(
        self,
        handlers: dict[bytes, tuple[str, Callable[[bytes], bytes]]],
        dispatcher: Dispatcher,
        *,
        max_message_bytes: int,
    ) -> None:
        self.handlers = handlers
        self.dispatcher = dispatcher
        self.max_message_bytes = max_message_bytes
        self.connections: set[ServerConnection] = set()
        depth = str(dispatcher.queue_limit).encode()
        self.setup_head_block = _HEAD_BLOCK + f.literal(f.PIPELINE_HEADER, depth)

    @property
    def busy(self) -> bool:
        return self.dispatcher.busy

    def protocol(self) -> ServerConnection:
        return ServerConnection(self)

    def goaway_all(self) -> None:
        for connection in list(self.connections):
            connection.close(f.NO_ERROR, "shutting down")


class _Stream:
    __slots__ = ("answered", "complete", "parts", "path", "pipelined", "size")

    def __init__(self, path: bytes, pipelined: bool) -> None:
        self.path = path
        self.pipelined = pipelined
        self.parts: list[bytes] = []
        self.size = 0
        self.answered = False
        self.complete = False  # the client finished sending (half-closed remote)


class ServerConnection(H2Endpoint):
    """One client connection: requests in, calls dispatched, responses out."""

    def __init__(self, server: GrpcServer) -> None:
        super().__init__()
        self.server = server
        self.dispatcher = server.dispatcher
        self.decoder = HeaderBlockDecoder()
        self.streams: dict[int, _Stream] = {}
        self.highest_stream = 0
        self.queued = 0
        self._preface = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._out.append(
            f.settings_frame(
                {
                    f.MAX_CONCURRENT_STREAMS: 1000,
                    f.INITIAL_WINDOW_SIZE: f.LOCAL_WINDOW,
                    f.MAX_FRAME_SIZE: f.LOCAL_MAX_FRAME,
                }
            )
        )
        self._out.append(f.window_update(0, f.LOCAL_WINDOW - f.DEFAULT_WINDOW))
        self.server.connections.add(self)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.server.connections.discard(self)
        self.streams.clear()

    def data_received(self, data: bytes) -> None:
        if self._preface:
            self._buffer += data
            if len(self._buffer) < len(f.PREFACE):
                if not f.PREFACE.startswith(bytes(self._buffer)):
                    self.close(f.PROTOCOL_ERROR, "not HTTP/2")
                return
            if not self._buffer.startswith(f.PREFACE):
                self.close(f.PROTOCOL_ERROR, "not HTTP/2")
                return
            self._preface = False
            data = bytes(self._buffer[len(f.PREFACE) :])
            self._buffer = bytearray()
        super().data_received(data)

    def after_read(self) -> None:
        dispatcher = self.dispatcher
        if dispatcher.queue and dispatcher.running is None:
            dispatcher.drain()

    def last_peer_stream(self) -> int:
        return self.highest_stream

    def stream_active(self, stream_id: int) -> bool:
        return stream_id in self.streams

    def is_open(self, stream_id: int) -> bool:
        return stream_id in self.streams and self.transport is not None

    # -- requests ------------------------------------------------------------------------

    def on_headers(self, stream_id: int, block: bytes, end_stream: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:  # trailers from the client: only their END_STREAM matters
            if end_stream:
                self._on_end(stream_id, stream)
            return
        if not stream_id & 1 or stream_id <= self.highest_stream:
            raise ConnectionError_(f.PROTOCOL_ERROR, f"bad new stream id {stream_id}")
        self.highest_stream = stream_id
        try:
            headers = self.decoder.decode(block)
        except HeaderBlockError as error:
            raise ConnectionError_(f.COMPRESSION_ERROR, str(error)) from error
        content_type = headers.get(b"content-type", b"")
        if headers.get(b":method") != b"POST" or not content_type.startswith(b"application/grpc"):
            self._out.append(f.headers_frames(stream_id, b"\x00\x07:status\x03415", True, 16384))
            if not end_stream:
                self._out.append(f.rst_stream(stream_id, f.NO_ERROR))
            return
        path = headers.get(b":path", b"")
        stream = self.streams[stream_id] = _Stream(path, headers.get(f.PIPELINE_HEADER) == b"1")
        if end_stream:
            self._on_end(stream_id, stream)
        elif path not in self.server.handlers and path != HEALTH_CHECK_PATH:
            self._trailers_only(stream_id, f.GRPC_UNIMPLEMENTED, f"unknown method {path!r}")

    def on_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return  # answered (and reset) or unknown: the window was credited anyway
        if not stream.answered and data:
            stream.parts.append(data)
            stream.size += len(data)
            if stream.size > self.server.max_message_bytes + 5:
                stream.parts.clear()
                limit = self.server.max_message_bytes
                message = f"received message larger than max ({limit} bytes)"
                self._trailers_only(stream_id, f.GRPC_RESOURCE_EXHAUSTED, message)
                return
        if end_stream:
            self._on_end(stream_id, stream)

    def on_reset(self, stream_id: int, code: int) -> None:
        self.streams.pop(stream_id, None)  # a queued job for it is skipped

    def on_goaway(self, last_stream_id: int, code: int) -> None:
        """The client is leaving: answer what is in flight, then it closes."""

    def _on_end(self, stream_id: int, stream: _Stream) -> None:
        stream.complete = True
        if stream.answered:
            self.streams.pop(stream_id, None)
            return
        parts = stream.parts
        buffer = parts[0] if len(parts) == 1 else b"".join(parts)
        stream.parts = []
        if len(buffer) < 5:
            self._trailers_only(stream_id, f.GRPC_INTERNAL, "missing request message")
            return
        if buffer[0]:
            self._trailers_only(stream_id, f.GRPC_UNIMPLEMENTED, "compressed messages")
            return
        length = int.from_bytes(buffer[1:5], "big")
        if length != len(buffer) - 5:
            self._trailers_only(stream_id, f.GRPC_INTERNAL, "one request message expected")
            return
        payload = buffer[5:]
        path = stream.path
        if path == HEALTH_CHECK_PATH:
            self._on_health_check(stream_id, payload)
            return
        handler = self.server.handlers.get(path)
        if handler is None:
            self._trailers_only(stream_id, f.GRPC_UNIMPLEMENTED, f"unknown method {path!r}")
            return
        name, function = handler
        key = call_method_key(payload) if path == CALL_PATH else None
        if path == REST_PATH:
            key = b""  # trivial: inline once the worker ran it quickly
        job = Job(self, stream_id, name, function, payload, key)
        if not self.dispatcher.offer(job, stream.pipelined):
            self._trailers_only(stream_id, f.GRPC_RESOURCE_EXHAUSTED, "Server busy")

    def _on_health_check(self, stream_id: int, payload: bytes) -> None:
        # HealthCheckRequest { string service = 1; }: "" (empty message) is the server itself.
        if payload not in (b"", b"\n\x00"):
            self._trailers_only(stream_id, f.GRPC_NOT_FOUND, "unknown service")
            return
        self._respond(stream_id, _SERVING, _HEAD_BLOCK)

    def on_result(self, stream_id: int, result: bytes | BaseException) -> None:
        """A dispatched job finished (the dispatcher flushes)."""
        if self.transport is None or stream_id not in self.streams:
            return  # the client went away (deadline, cancel): drop the answer
        if isinstance(result, BaseException):
            self._trailers_only(stream_id, f.GRPC_UNKNOWN, repr(result))
            return
        stream = self.streams[stream_id]
        head = self.server.setup_head_block if stream.path == SETUP_PATH else _HEAD_BLOCK
        self._respond(stream_id, result, head)

    # -- responses -----------------------------------------------------------------------

    def _respond(self, stream_id: int, payload: bytes, head_block: bytes) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.answered = True
        max_frame = self.peer_max_frame
        head = f.headers_frames(stream_id, self._table_size_prefix() + head_block, False, max_frame)
        tail = f.headers_frames(stream_id, _OK_TRAILER_BLOCK, True, max_frame)
        if self.send_message(
            stream_id, head, f.grpc_message(payload), tail, on_done=self._response_sent
        ):
            self._response_sent(stream_id)

    def _response_sent(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None and not stream.complete:
            self._out.append(f.rst_stream(stream_id, f.NO_ERROR))

    def _trailers_only(self, stream_id: int, status: int, message: str) -> None:
        """Answer with headers only; reset the stream if the client is still sending."""
        block = self._table_size_prefix() + _trailers_only_block(status, message)
        self._out.append(f.headers_frames(stream_id, block, True, self.peer_max_frame))
        stream = self.streams.pop(stream_id, None)
        if stream is not None and not stream.complete:
            self._out.append(f.rst_stream(stream_id, f.NO_ERROR))  # stop sending the rest

    def _table_size_prefix(self) -> bytes:
        """A peer that shrank our HPACK table must hear a size update (to 0: we never
        index) at the start of our next header block."""
        if not self.table_update_due:
            return b""
        self.table_update_due = False
        return b"\x20"
