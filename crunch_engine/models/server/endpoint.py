"""The connection-level HTTP/2 machinery shared by the model server and the fast client.

Hand-written instead of the ``h2`` library: a gRPC unary call is three or four frames
each way, and h2's generic state machines cost ~0.5 ms of CPU per request, which times
100 models on two cores is the whole latency budget. This base class parses frames
(fragmented reads, padding, CONTINUATION), answers SETTINGS / PING, keeps both flow
control directions (inbound: WINDOW_UPDATE grants as data is consumed; outbound: the
peer's connection and stream windows and maximum frame size, with a queue of blocked
messages), and hands HEADERS / DATA / RST_STREAM / GOAWAY to the subclass.

Writes are collected in ``_out`` and flushed once per read (or per completed batch), so
answering several streams costs one ``write`` syscall.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

from crunch_engine.models.server import framing as f

logger = logging.getLogger("crunch_engine.models.http2")

_U32 = struct.Struct(">L")


class ConnectionError_(Exception):
    """A connection-level protocol error: GOAWAY with ``code``, then close."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Outgoing:
    """A message waiting for flow-control window: DATA from ``offset``, then ``tail``."""

    __slots__ = ("data", "end_on_data", "offset", "on_done", "stream_id", "tail")

    def __init__(
        self,
        stream_id: int,
        data: memoryview,
        tail: bytes,
        end_on_data: bool,
        on_done: Callable[[int], None] | None,
    ) -> None:
        self.stream_id = stream_id
        self.data = data
        self.offset = 0
        self.tail = tail
        self.end_on_data = end_on_data
        self.on_done = on_done


class H2Endpoint(asyncio.Protocol):
    """Frames in, callbacks out; writes buffered in ``_out`` until ``flush()``."""

    max_inbound_frame = f.LOCAL_MAX_FRAME

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._buffer = bytearray()
        self._continuation: list[object] | None = None  # [stream_id, flags, [parts]]
        self.peer_max_frame = f.DEFAULT_MAX_FRAME
        self.peer_initial_window = f.DEFAULT_WINDOW
        self.table_update_due = False  # the peer shrank our encoder's HPACK table
        self.send_window = f.DEFAULT_WINDOW
        self.stream_windows: dict[int, int] = {}  # streams whose window differs from initial
        self.blocked: list[_Outgoing] = []
        self._recv_unacked = 0
        self._stream_recv: dict[int, int] = {}
        self.closed = False

    # -- subclass hooks ------------------------------------------------------------------

    def on_headers(self, stream_id: int, block: bytes, end_stream: bool) -> None:
        raise NotImplementedError

    def on_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        raise NotImplementedError

    def on_reset(self, stream_id: int, code: int) -> None:
        """The peer reset a stream."""

    def on_goaway(self, last_stream_id: int, code: int) -> None:
        """The peer will not process streams above ``last_stream_id``."""

    def stream_active(self, stream_id: int) -> bool:
        """Whether a WINDOW_UPDATE for this stream must be remembered."""
        return False

    def last_peer_stream(self) -> int:
        return 0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closed = True
        self.blocked.clear()
        self._out.clear()

    def flush(self) -> None:
        out = self._out
        if out:
            transport = self.transport
            if transport is not None:
                transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def close(self, code: int = f.NO_ERROR, message: str = "") -> None:
        """GOAWAY then close (flushes pending writes first)."""
        if self.transport is not None and not self.closed:
            self._out.append(f.goaway(self.last_peer_stream(), code, message.encode()[:200]))
            self.flush()
            self.transport.close()
        self.closed = True

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer:
            buffer += data
            view: bytes | bytearray = buffer
        else:
            view = data
        pos = 0
        size = len(view)
        try:
            while size - pos >= 9:
                length = (view[pos] << 16) | (view[pos + 1] << 8) | view[pos + 2]
                end = pos + 9 + length
                if end > size:
                    if length > self.max_inbound_frame:
                        raise ConnectionError_(f.FRAME_SIZE_ERROR, "frame too large")
                    break
                kind = view[pos + 3]
                flags = view[pos + 4]
                stream_id = _U32.unpack_from(view, pos + 5)[0] & 0x7FFFFFFF
                payload = bytes(view[pos + 9 : end])
                pos = end
                if self._continuation is not None and kind != f.CONTINUATION:
                    raise ConnectionError_(f.PROTOCOL_ERROR, "expected CONTINUATION")
                if kind == f.DATA:
                    self._on_data_frame(stream_id, flags, payload)
                elif kind == f.HEADERS:
                    self._on_headers_frame(stream_id, flags, payload)
                else:
                    self._on_control_frame(kind, flags, stream_id, payload)
                if self.closed:
                    return
        except ConnectionError_ as error:
            logger.debug("HTTP/2 connection error %d: %s", error.code, error)
            self._buffer = bytearray()
            self.close(error.code, str(error))
            return
        if view is buffer:
            del buffer[:pos]
        elif pos < size:
            self._buffer = bytearray(view[pos:])
        self.after_read()
        self.flush()

    def after_read(self) -> None:
        """Called once per read, after its frames were handled, before the flush."""

    # -- inbound frames ------------------------------------------------------------------

    def _on_data_frame(self, stream_id: int, flags: int, payload: bytes) -> None:
        if stream_id == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "DATA on stream 0")
        consumed = len(payload)
        if flags & f.PADDED:
            payload = _strip_padding(payload)
        end_stream = bool(flags & f.END_STREAM)
        if consumed:
            self._grant(stream_id, consumed, end_stream)
        elif end_stream:
            self._stream_recv.pop(stream_id, None)
        self.on_data(stream_id, payload, end_stream)

    def _grant(self, stream_id: int, consumed: int, end_stream: bool) -> None:
        """Return window to the peer once half of it was used (few WINDOW_UPDATEs); a
        stream the peer ended needs no more of its own window (nor its counter)."""
        unacked = self._recv_unacked + consumed
        if unacked >= f.LOCAL_WINDOW // 2:
            self._out.append(f.window_update(0, unacked))
            unacked = 0
        self._recv_unacked = unacked
        if end_stream:
            self._stream_recv.pop(stream_id, None)
            return
        stream_unacked = self._stream_recv.get(stream_id, 0) + consumed
        if stream_unacked >= f.LOCAL_WINDOW // 2:
            if self.stream_active(stream_id):
                self._out.append(f.window_update(stream_id, stream_unacked))
            stream_unacked = 0
        if stream_unacked:
            self._stream_recv[stream_id] = stream_unacked

    def _on_headers_frame(self, stream_id: int, flags: int, payload: bytes) -> None:
        if stream_id == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "HEADERS on stream 0")
        if flags & f.PADDED:
            payload = _strip_padding(payload)
        if flags & f.PRIORITY_FLAG:
            payload = payload[5:]
        if flags & f.END_HEADERS:
            self.on_headers(stream_id, payload, bool(flags & f.END_STREAM))
        else:
            self._continuation = [stream_id, flags, [payload]]

    def _on_control_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if kind == f.SETTINGS:
            if stream_id:
                raise ConnectionError_(f.PROTOCOL_ERROR, "SETTINGS on a stream")
            if flags & f.ACK:
                return
            if len(payload) % 6:
                raise ConnectionError_(f.FRAME_SIZE_ERROR, "bad SETTINGS length")
            self._apply_settings(payload)
            self._out.append(f.SETTINGS_ACK)
        elif kind == f.WINDOW_UPDATE:
            if len(payload) != 4:
                raise ConnectionError_(f.FRAME_SIZE_ERROR, "bad WINDOW_UPDATE length")
            self._on_window_update(stream_id, _U32.unpack(payload)[0] & 0x7FFFFFFF)
        elif kind == f.PING:
            if len(payload) != 8 or stream_id:
                raise ConnectionError_(f.FRAME_SIZE_ERROR, "bad PING")
            if not flags & f.ACK:
                self._out.append(f.frame(f.PING, f.ACK, 0, payload))
        elif kind == f.CONTINUATION:
            pending = self._continuation
            if pending is None or pending[0] != stream_id:
                raise ConnectionError_(f.PROTOCOL_ERROR, "unexpected CONTINUATION")
            parts: list[bytes] = pending[2]  # type: ignore[assignment]
            parts.append(payload)
            if sum(len(part) for part in parts) > 1 << 20:
                raise ConnectionError_(f.PROTOCOL_ERROR, "header block too large")
            if flags & f.END_HEADERS:
                self._continuation = None
                end_stream = bool(pending[1] & f.END_STREAM)  # type: ignore[operator]
                self.on_headers(stream_id, b"".join(parts), end_stream)
        elif kind == f.RST_STREAM:
            if len(payload) != 4 or not stream_id:
                raise ConnectionError_(f.PROTOCOL_ERROR, "bad RST_STREAM")
            self._forget_stream(stream_id)
            self.on_reset(stream_id, _U32.unpack(payload)[0])
        elif kind == f.GOAWAY:
            if len(payload) < 8:
                raise ConnectionError_(f.FRAME_SIZE_ERROR, "bad GOAWAY")
            last, code = struct.unpack_from(">LL", payload)
            self.on_goaway(last & 0x7FFFFFFF, code)
        elif kind == f.PUSH_PROMISE:
            raise ConnectionError_(f.PROTOCOL_ERROR, "push is disabled")
        # PRIORITY and unknown frame types are ignored.

    def _apply_settings(self, payload: bytes) -> None:
        for key, value in f.parse_settings(payload):
            if key == f.INITIAL_WINDOW_SIZE:
                if value > f.MAX_WINDOW:
                    raise ConnectionError_(f.FLOW_CONTROL_ERROR, "initial window too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream_id in self.stream_windows:
                    self.stream_windows[stream_id] += delta
            elif key == f.MAX_FRAME_SIZE:
                if not f.DEFAULT_MAX_FRAME <= value <= f.MAX_FRAME_LIMIT:
                    raise ConnectionError_(f.PROTOCOL_ERROR, "bad MAX_FRAME_SIZE")
                self.peer_max_frame = value
            elif key == f.HEADER_TABLE_SIZE and value < 4096:
                self.table_update_due = True
        if self.blocked:
            self._pump()

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        if increment == 0:
            if stream_id == 0:
                raise ConnectionError_(f.PROTOCOL_ERROR, "zero WINDOW_UPDATE")
            return
        if stream_id == 0:
            self.send_window += increment
            if self.send_window > f.MAX_WINDOW:
                raise ConnectionError_(f.FLOW_CONTROL_ERROR, "window overflow")
        elif stream_id in self.stream_windows:
            self.stream_windows[stream_id] += increment
        elif self.stream_active(stream_id):
            self.stream_windows[stream_id] = self.peer_initial_window + increment
        else:
            return
        if self.blocked:
            self._pump()

    def _forget_stream(self, stream_id: int) -> None:
        self.stream_windows.pop(stream_id, None)
        self._stream_recv.pop(stream_id, None)
        if self.blocked:
            self.blocked = [item for item in self.blocked if item.stream_id != stream_id]

    # -- outbound messages ---------------------------------------------------------------

    def send_message(
        self,
        stream_id: int,
        head: bytes,
        message: bytes,
        tail: bytes,
        *,
        end_on_data: bool = False,
        on_done: Callable[[int], None] | None = None,
    ) -> bool:
        """Queue ``head`` + ``message`` as DATA + ``tail``, respecting flow control.

        Returns True when all of it is in ``_out``; otherwise the rest goes out as the peer
        grants window and ``on_done(stream_id)`` is called once the tail is written.
        """
        size = len(message)
        window = self.stream_windows.get(stream_id, self.peer_initial_window)
        if (
            not self.blocked
            and size <= self.send_window
            and size <= window
            and size <= self.peer_max_frame
        ):
            self.send_window -= size
            flags = f.END_STREAM if end_on_data else 0
            self._out.append(head + f.frame_header(size, f.DATA, flags, stream_id))
            self._out.append(message)
            if tail:
                self._out.append(tail)
            self.stream_windows.pop(stream_id, None)  # this side of the stream is done
            return True
        if head:
            self._out.append(head)
        self.blocked.append(_Outgoing(stream_id, memoryview(message), tail, end_on_data, on_done))
        self._pump()
        return False

    def _pump(self) -> None:
        """Send what the windows allow of the blocked messages."""
        remaining: list[_Outgoing] = []
        for item in self.blocked:
            data = item.data
            total = len(data)
            stream_id = item.stream_id
            while item.offset < total:
                window = self.stream_windows.get(stream_id, self.peer_initial_window)
                size = min(self.send_window, window, self.peer_max_frame, total - item.offset)
                if size <= 0:
                    break
                last = item.offset + size >= total
                flags = f.END_STREAM if last and item.end_on_data else 0
                self._out.append(f.frame_header(size, f.DATA, flags, stream_id))
                self._out.append(bytes(data[item.offset : item.offset + size]))
                item.offset += size
                self.send_window -= size
                self.stream_windows[stream_id] = window - size
            if item.offset < total:
                remaining.append(item)
                continue
            if item.tail:
                self._out.append(item.tail)
            self.stream_windows.pop(stream_id, None)
            if item.on_done is not None:
                item.on_done(stream_id)
        self.blocked = remaining


def _strip_padding(payload: bytes) -> bytes:
    if not payload:
        raise ConnectionError_(f.PROTOCOL_ERROR, "missing pad length")
    pad = payload[0]
    if pad >= len(payload):
        raise ConnectionError_(f.PROTOCOL_ERROR, "padding exceeds the frame")
    return payload[1 : len(payload) - pad]
