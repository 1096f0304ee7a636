"""The lean gRPC client for our own model servers: pre-encoded requests, pipelining.

Used only for servers that advertised ``x-crunch-pipeline`` on Setup (grpc.aio stays for
everything else). Per model one persistent HTTP/2 connection on the same hand-written
framing as the server. A call sequence (e.g. a cycle's tick then predict) is encoded
once: every call's HEADERS + DATA bytes, with the same stream ids on every connection
(ids come from one client-wide counter, so they increase on each connection), are one
byte string written as is to every model. Responses are collected by ``SequenceRun``
with one timer for the whole fan-out instead of one future and one timer per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from crunch_engine.models.server import framing as f
from crunch_engine.models.server.endpoint import H2Endpoint
from crunch_engine.models.server.hpack_cache import HeaderBlockDecoder, HeaderBlockError

CALL_PATH = b"/dynamic_subclass.DynamicSubclassService/Call"
MAX_STREAM_ID = 2**31 - 1

_REQUEST_BLOCK = (
    f.METHOD_POST
    + f.SCHEME_HTTP
    + f.literal(b":path", CALL_PATH)
    + f.literal(b":authority", b"model")
    + f.CONTENT_TYPE_GRPC
    + f.literal(b"te", b"trailers")
    + f.literal(f.PIPELINE_HEADER, b"1")
)


class Outcome:
    """What came back for one call on one model (decoded later by the client)."""

    __slots__ = ("finished", "message", "payload", "status")

    def __init__(self, status: int, message: str, payload: bytes | None, finished: float) -> None:
        self.status = status  # gRPC status code
        self.message = message
        self.payload = payload  # the response message (status OK only)
        self.finished = finished  # perf_counter() when it completed


class EncodedSequence:
    """The calls of one sequence as wire bytes, for one set of stream ids."""

    __slots__ = ("bytes", "largest", "messages", "stream_ids", "total")

    def __init__(self, requests: Sequence[bytes], first_stream_id: int) -> None:
        self.stream_ids = [first_stream_id + 2 * i for i in range(len(requests))]
        self.messages = [f.grpc_message(request) for request in requests]
        self.largest = max((len(message) for message in self.messages), default=0)
        self.total = sum(len(message) for message in self.messages)
        self.bytes: bytes | None = None  # one DATA frame per message: only for small ones
        if self.largest <= f.LOCAL_MAX_FRAME:
            parts = []
            for stream_id, message in zip(self.stream_ids, self.messages, strict=True):
                parts.append(f.headers_frames(stream_id, _REQUEST_BLOCK, False, 1 << 14))
                parts.append(f.frame_header(len(message), f.DATA, f.END_STREAM, stream_id))
                parts.append(message)
            self.bytes = b"".join(parts)


class SequenceRun:
    """The responses of one sequence from many models; resolves ``done`` when all are in.

    Deadlines are per call: call i of a model must complete within ``timeout`` of call
    i-1's completion (of the write, for the first) - what separate calls would allow.
    A model that misses one gets TIMEOUT for it and every later call of the sequence
    (which separate calls would see as "busy"), and its streams are reset.
    """

    def __init__(self, n_models: int, n_calls: int, timeout: float, began: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.n_calls = n_calls
        self.timeout = timeout
        self.outcomes: list[list[Outcome | None]] = [[None] * n_calls for _ in range(n_models)]
        self.next_call = [0] * n_models
        self.last_done = [began] * n_models
        self.connections: list[FastConnection | None] = [None] * n_models
        self.remaining = n_models * n_calls
        self.done: asyncio.Future[None] = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._began = began
        if self.remaining == 0:
            self.done.set_result(None)

    def arm(self) -> None:
        delay = max(0.0, self._began + self.timeout - time.perf_counter())
        self._timer = self.loop.call_later(delay, self._check)

    def complete(self, model: int, call: int, outcome: Outcome) -> None:
        row = self.outcomes[model]
        if row[call] is not None:
            return
        row[call] = outcome
        self.remaining -= 1
        index = self.next_call[model]
        while index < self.n_calls and row[index] is not None:
            self.last_done[model] = row[index].finished  # type: ignore[union-attr]
            index += 1
        self.next_call[model] = index
        if self.remaining == 0 and not self.done.done():
            if self._timer is not None:
                self._timer.cancel()
            self.done.set_result(None)

    def _check(self) -> None:
        now = time.perf_counter()
        earliest = None
        for model, index in enumerate(self.next_call):
            if index >= self.n_calls:
                continue
            deadline = self.last_done[model] + self.timeout
            if deadline <= now + 1e-4:
                self.expire(model, "Deadline Exceeded", f.GRPC_DEADLINE_EXCEEDED)
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if self.remaining and earliest is not None:
            self._timer = self.loop.call_later(max(0.0, earliest - now), self._check)

    def expire(self, model: int, message: str, status: int) -> None:
        """Fail the pending calls of ``model`` (first with ``message``), reset its streams."""
        index = self.next_call[model]
        if index >= self.n_calls:
            return
        connection = self.connections[model]
        if connection is not None:
            connection.cancel_run(self)
        now = time.perf_counter()
        later = "not run: an earlier call of the sequence did not complete"
        for call in range(index, self.n_calls):
            if self.outcomes[model][call] is None:
                self.complete(
                    model, call, Outcome(status, message if call == index else later, None, now)
                )


class _Pending:
    __slots__ = ("call", "headers", "model", "parts", "run")

    def __init__(self, run: SequenceRun, model: int, call: int) -> None:
        self.run = run
        self.model = model
        self.call = call
        self.parts: list[bytes] = []
        self.headers: dict[bytes, bytes] | None = None


class FastConnection(H2Endpoint):
    """One persistent connection to one of our model servers."""

    def __init__(self) -> None:
        super().__init__()
        self.decoder = HeaderBlockDecoder()
        self.pending: dict[int, _Pending] = {}
        self.last_stream_id = 0
        self.draining = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int, within: float) -> FastConnection:
        """Connect and wait for the server's SETTINGS."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within):
            _, connection = await loop.create_connection(cls, host, port)
            await connection.ready
        return connection

    @property
    def usable(self) -> bool:
        return not self.closed and not self.draining and self.transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._out.append(f.PREFACE)
        self._out.append(
            f.settings_frame(
                {
                    f.ENABLE_PUSH: 0,
                    f.INITIAL_WINDOW_SIZE: f.LOCAL_WINDOW,
                    f.MAX_FRAME_SIZE: f.LOCAL_MAX_FRAME,
                }
            )
        )
        self._out.append(f.window_update(0, f.LOCAL_WINDOW - f.DEFAULT_WINDOW))
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost: {exc}"))
        self._fail_all(f.GRPC_UNAVAILABLE, "connection lost")

    def after_read(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)  # the server's SETTINGS arrived

    def stream_active(self, stream_id: int) -> bool:
        return stream_id in self.pending

    def last_peer_stream(self) -> int:
        return 0

    # -- requests ------------------------------------------------------------------------

    def send(self, encoded: EncodedSequence, run: SequenceRun, model: int) -> bool:
        """Write the sequence (the shared bytes when flow control allows); False when the
        stream ids are not above this connection's last one (open a new connection)."""
        stream_ids = encoded.stream_ids
        if stream_ids[0] <= self.last_stream_id or not self.usable:
            return False
        self.last_stream_id = stream_ids[-1]
        run.connections[model] = self
        for call, stream_id in enumerate(stream_ids):
            self.pending[stream_id] = _Pending(run, model, call)
        shared = encoded.bytes
        if (
            shared is not None
            and not self.blocked
            and encoded.total <= self.send_window
            and encoded.largest <= min(self.peer_initial_window, self.peer_max_frame)
        ):
            self.send_window -= encoded.total
            self._out.append(shared)
        else:
            for stream_id, message in zip(stream_ids, encoded.messages, strict=True):
                head = f.headers_frames(stream_id, _REQUEST_BLOCK, False, self.peer_max_frame)
                self.send_message(stream_id, head, message, b"", end_on_data=True)
        self.flush()
        return True

    def cancel_run(self, run: SequenceRun) -> None:
        """Reset the streams of ``run`` still open here (their late answers are dropped)."""
        for stream_id in [sid for sid, p in self.pending.items() if p.run is run]:
            del self.pending[stream_id]
            self._forget_stream(stream_id)
            self._out.append(f.rst_stream(stream_id, f.CANCEL))
        self.flush()

    # -- responses -----------------------------------------------------------------------

    def on_headers(self, stream_id: int, block: bytes, end_stream: bool) -> None:
        try:
            headers = self.decoder.decode(block)
        except HeaderBlockError as error:
            self.close(f.COMPRESSION_ERROR, str(error))
            return
        pending = self.pending.get(stream_id)
        if pending is None:
            return
        if pending.headers is None:
            pending.headers = headers
            if headers.get(b":status") != b"200":
                status = headers.get(b":status", b"?").decode("latin-1")
                self._finish(stream_id, pending, f.GRPC_UNKNOWN, f"HTTP status {status}")
                return
        if end_stream:
            status_raw = headers.get(b"grpc-status")
            if status_raw is None:
                self._finish(stream_id, pending, f.GRPC_INTERNAL, "missing grpc-status")
                return
            message = f.percent_decode(headers.get(b"grpc-message", b""))
            self._finish(stream_id, pending, int(status_raw), message)

    def on_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        pending = self.pending.get(stream_id)
        if pending is None:
            return
        if data:
            pending.parts.append(data)
        if end_stream:
            self._finish(stream_id, pending, f.GRPC_INTERNAL, "stream ended without trailers")

    def on_reset(self, stream_id: int, code: int) -> None:
        pending = self.pending.get(stream_id)
        if pending is not None:
            status = f.GRPC_UNAVAILABLE if code == f.REFUSED_STREAM else f.GRPC_INTERNAL
            self._finish(stream_id, pending, status, f"stream reset by the server (code {code})")

    def on_goaway(self, last_stream_id: int, code: int) -> None:
        self.draining = True
        for stream_id in [sid for sid in self.pending if sid > last_stream_id]:
            self._finish(
                stream_id, self.pending[stream_id], f.GRPC_UNAVAILABLE, "server going away"
            )

    def _finish(self, stream_id: int, pending: _Pending, status: int, message: str) -> None:
        del self.pending[stream_id]
        self._stream_recv.pop(stream_id, None)
        payload = None
        if status == f.GRPC_OK:
            parts = pending.parts
            buffer = parts[0] if len(parts) == 1 else b"".join(parts)
            if (
                len(buffer) < 5
                or buffer[0]
                or int.from_bytes(buffer[1:5], "big") != len(buffer) - 5
            ):
                status, message = f.GRPC_INTERNAL, "malformed response message"
            else:
                payload = buffer[5:]
        pending.run.complete(
            pending.model, pending.call, Outcome(status, message, payload, time.perf_counter())
        )

    def _fail_all(self, status: int, message: str) -> None:
        for stream_id, pending in list(self.pending.items()):
            self._finish(stream_id, pending, status, message)


class StreamIds:
    """The client-wide stream id counter: odd, increasing, shared by every connection."""

    def __init__(self) -> None:
        self.next = 1

    def take(self, count: int) -> int:
        first = self.next
        if first + 2 * count > MAX_STREAM_ID:
            first = 1  # connections see ids going down and are replaced (send -> False)
        self.next = first + 2 * count
        return first
