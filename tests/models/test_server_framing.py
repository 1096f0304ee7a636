"""Frame-level behaviour of our model server, driven by a raw HTTP/2 socket client.

The client below writes frames by hand (``framing``) and decodes responses with
``hpack``, so each test controls exactly what the server sees: fragmented reads,
CONTINUATION, small windows, PING, GOAWAY.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import hpack
import pytest

from crunch_engine.models.protocol import codec, dynamic_subclass_pb2
from crunch_engine.models.server import framing as f
from crunch_engine.models.server.connection import GrpcServer
from crunch_engine.models.server.dispatch import Dispatcher
from crunch_engine.models.server.hpack_cache import HeaderBlockDecoder, is_context_free
from tests.models.conftest import DEMO_MODELS, EXAMPLE_MODELS, StartServer
from tests.models.interop.servers import BASE_CLASS

MiB = 1024 * 1024


def request_block(path: bytes, pipelined: bool = False) -> bytes:
    block = (
        f.METHOD_POST
        + f.SCHEME_HTTP
        + f.literal(b":path", path)
        + f.literal(b":authority", b"test")
        + f.CONTENT_TYPE_GRPC
        + f.literal(b"te", b"trailers")
    )
    return block + (f.literal(f.PIPELINE_HEADER, b"1") if pipelined else b"")


SETUP = b"/dynamic_subclass.DynamicSubclassService/Setup"
CALL = b"/dynamic_subclass.DynamicSubclassService/Call"


class RawClient:
    """A blocking HTTP/2 client that records every frame the server sends."""

    def __init__(self, port: int, settings: dict[int, int] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.decoder = hpack.Decoder()
        self.frames: list[tuple[int, int, int, bytes]] = []
        self.sock.sendall(f.PREFACE + f.settings_frame(settings or {}))

    def send(self, data: bytes, chunk: int = 0) -> None:
        if not chunk:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), chunk):  # one byte (or chunk) at a time: fragmented reads
            self.sock.sendall(data[i : i + chunk])
            time.sleep(0.0005)

    def read_frame(self) -> tuple[int, int, int, bytes]:
        while True:
            if len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) >= 9 + length:
                    kind, flags = self.buffer[3], self.buffer[4]
                    stream = struct.unpack(">L", self.buffer[5:9])[0] & 0x7FFFFFFF
                    payload = self.buffer[9 : 9 + length]
                    self.buffer = self.buffer[9 + length :]
                    self.frames.append((kind, flags, stream, payload))
                    return kind, flags, stream, payload
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.buffer += data

    def response(self, stream_id: int, grant: bool = False) -> tuple[dict, bytes, dict]:
        """Read until the stream ends: (headers, message, trailers); WINDOW_UPDATE if asked."""
        headers: dict = {}
        trailers: dict = {}
        body = b""
        while True:
            kind, flags, stream, payload = self.read_frame()
            if kind == f.SETTINGS and not flags & f.ACK:
                self.sock.sendall(f.SETTINGS_ACK)
            if stream != stream_id:
                continue
            if kind == f.HEADERS:
                decoded = dict(self.decoder.decode(payload, raw=True))
                (trailers if headers else headers).update(decoded)
            elif kind == f.DATA:
                body += payload
                if grant and payload:
                    self.sock.sendall(
                        f.window_update(0, len(payload)) + f.window_update(stream, len(payload))
                    )
            elif kind == f.RST_STREAM:
                break
            if flags & f.END_STREAM and kind in (f.HEADERS, f.DATA):
                break
        if not trailers and b"grpc-status" in headers:
            trailers = headers  # trailers-only
        return headers, body[5:], trailers

    def unary(
        self, stream_id: int, path: bytes, request: bytes, *, pipelined: bool = False
    ) -> bytes:
        message = f.grpc_message(request)
        return f.headers_frames(stream_id, request_block(path, pipelined), False, 16384) + f.frame(
            f.DATA, f.END_STREAM, stream_id, message
        )

    def close(self) -> None:
        self.sock.close()


def setup_request() -> bytes:
    return dynamic_subclass_pb2.SetupRequest(className=BASE_CLASS).SerializeToString()


def call_status(body: bytes) -> tuple[str, object]:
    response = dynamic_subclass_pb2.CallResponse.FromString(body)
    return response.status.code, codec.from_variant(response.methodResponse)


@pytest.fixture
def momentum(start_server: StartServer) -> int:
    return start_server(DEMO_MODELS / "momentum")[1]


def test_fragmented_reads_and_the_pipelining_advertisement(momentum: int) -> None:
    client = RawClient(momentum)
    client.send(client.unary(1, SETUP, setup_request()), chunk=1)
    headers, body, trailers = client.response(1)
    assert headers[b":status"] == b"200"
    assert headers[f.PIPELINE_HEADER] == b"4"
    assert trailers[b"grpc-status"] == b"0"
    assert dynamic_subclass_pb2.SetupResponse.FromString(body).status.code == "SUCCESS"
    request = codec.encode_call_request("predict", (), {"asset": "BTC", "horizon_seconds": 1})
    client.send(client.unary(3, CALL, request), chunk=7)
    _, body, trailers = client.response(3)
    assert trailers[b"grpc-status"] == b"0"
    assert call_status(body) == ("SUCCESS", {"p_up": 0.5})
    client.close()


def test_continuation_frames_carry_a_split_header_block(momentum: int) -> None:
    client = RawClient(momentum)
    block = request_block(SETUP) + f.literal(b"x-padding", b"p" * 3000)
    parts = [block[i : i + 1000] for i in range(0, len(block), 1000)]
    frames = f.frame(f.HEADERS, 0, 1, parts[0])
    for index, part in enumerate(parts[1:], start=1):
        frames += f.frame(f.CONTINUATION, f.END_HEADERS if index == len(parts) - 1 else 0, 1, part)
    frames += f.frame(f.DATA, f.END_STREAM, 1, f.grpc_message(setup_request()))
    client.send(frames)
    _, _, trailers = client.response(1)
    assert trailers[b"grpc-status"] == b"0"
    # An interleaved frame inside a header block is a connection error: GOAWAY.
    client.send(f.frame(f.HEADERS, 0, 3, request_block(CALL)) + f.frame(f.PING, 0, 0, b"8bytes!!"))
    while (frame := client.read_frame())[0] != f.GOAWAY:
        pass
    assert struct.unpack(">L", frame[3][4:8])[0] == f.PROTOCOL_ERROR
    client.close()


def test_ping_is_acknowledged_with_its_payload(momentum: int) -> None:
    client = RawClient(momentum)
    client.send(f.frame(f.PING, 0, 0, b"abcdefgh"))
    while (frame := client.read_frame())[0] != f.PING:
        pass
    assert frame[1] == f.ACK
    assert frame[3] == b"abcdefgh"
    client.close()


def test_flow_control_with_small_windows_and_frames(start_server: StartServer) -> None:
    """A 3 MiB result to a client with 64 KiB windows and 16 KiB frames."""
    _, port = start_server(EXAMPLE_MODELS / "huge")
    client = RawClient(port)  # default settings: 65535 windows, 16384 frames
    client.send(client.unary(1, SETUP, setup_request()))
    client.response(1)
    size = 3 * MiB
    client.send(client.unary(3, CALL, codec.encode_call_request("sized", (size,))))
    # Without grants the server must stop at the 65535-byte windows.
    sent = 0
    client.sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        while True:
            kind, _, stream, payload = client.read_frame()
            if kind == f.DATA and stream == 3:
                assert len(payload) <= f.DEFAULT_MAX_FRAME
                sent += len(payload)
    assert 0 < sent <= f.DEFAULT_WINDOW
    client.sock.settimeout(10)
    client.send(f.window_update(0, sent) + f.window_update(3, sent))
    _, _, trailers = client.response(3, grant=True)
    assert trailers[b"grpc-status"] == b"0"
    data_frames = [p for k, _, s, p in client.frames if k == f.DATA and s == 3]
    assert max(len(p) for p in data_frames) <= f.DEFAULT_MAX_FRAME
    full = b"".join(data_frames)[5:]
    assert call_status(full) == ("SUCCESS", "x" * size)
    client.close()


def test_goaway_on_sigterm_and_client_goaway(momentum: int, start_server: StartServer) -> None:
    process, port = start_server(DEMO_MODELS / "noisy")
    client = RawClient(port)
    client.send(client.unary(1, SETUP, setup_request()))
    client.response(1)
    process.terminate()
    while (frame := client.read_frame())[0] != f.GOAWAY:
        pass
    last, code = struct.unpack(">LL", frame[3][:8])
    assert (last, code) == (1, f.NO_ERROR)
    assert process.wait(10) == 0
    client.close()
    # The server tolerates a client's GOAWAY and still answers a PING before the close.
    other = RawClient(momentum)
    other.send(f.goaway(0, f.NO_ERROR) + f.frame(f.PING, 0, 0, b"stillok!"))
    while (frame := other.read_frame())[0] != f.PING:
        pass
    assert frame[3] == b"stillok!"
    other.close()


def test_pipelined_requests_queue_in_order_and_the_rest_is_busy(start_server: StartServer) -> None:
    _, port = start_server(EXAMPLE_MODELS / "slow")
    client = RawClient(port)
    client.send(client.unary(1, SETUP, setup_request()))
    client.response(1)
    batch = b""
    for index in range(6):  # at most 4 queued or running per connection: 2 over
        request = codec.encode_call_request("predict", (), {"seconds": 0.05 * (index % 2)})
        batch += client.unary(3 + 2 * index, CALL, request, pipelined=True)
    plain = codec.encode_call_request("predict", (), {"seconds": 0.0})
    batch += client.unary(15, CALL, plain)  # not pipelined: busy at once
    client.send(batch)
    order = []
    while len(order) < 7:
        kind, flags, stream, payload = client.read_frame()
        if kind == f.HEADERS and flags & f.END_STREAM:
            headers = dict(client.decoder.decode(payload, raw=True))
            order.append((stream, headers[b"grpc-status"], headers.get(b"grpc-message")))
        elif kind == f.HEADERS:
            client.decoder.decode(payload, raw=True)
    busy = [(s, m) for s, code, m in order if code == b"8"]
    assert sorted(busy) == [(11, b"Server busy"), (13, b"Server busy"), (15, b"Server busy")]
    assert [s for s, code, _ in order if code == b"0"] == [3, 5, 7, 9]
    client.close()


def test_hpack_cache_only_for_context_free_blocks() -> None:
    encoder = hpack.Encoder()
    indexed = encoder.encode([(b":path", b"/x"), (b"custom", b"v")])  # incremental indexing
    again = encoder.encode([(b":path", b"/x"), (b"custom", b"v")])  # dynamic-table refs
    assert not is_context_free(indexed)
    assert not is_context_free(again)
    assert is_context_free(request_block(CALL, True))
    assert not is_context_free(request_block(CALL)[:-3])  # truncated literal
    decoder = HeaderBlockDecoder()
    assert decoder.decode(indexed)[b"custom"] == b"v"
    assert decoder.decode(again)[b"custom"] == b"v"  # decoded against the table, not cached
    first = decoder.decode(request_block(CALL, True))
    assert HeaderBlockDecoder().decode(request_block(CALL, True)) is first  # cached by bytes
    assert first[b":path"] == CALL


class _Sink:
    """A transport that keeps what the server writes."""

    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, data: bytes) -> None:
        self.written += data

    def get_extra_info(self, name: str) -> None:
        return None

    def close(self) -> None:
        pass


async def test_finished_streams_leave_no_state_behind() -> None:
    """Thousands of calls on one connection: every stream's bookkeeping (receive window
    counters, send windows, stream records) is gone once it is answered."""
    loop = asyncio.get_running_loop()
    answer = dynamic_subclass_pb2.CallResponse().SerializeToString()
    handlers = {CALL: ("Call", lambda payload: answer)}
    server = GrpcServer(handlers, Dispatcher(loop), max_message_bytes=MiB)
    connection = server.protocol()
    sink = _Sink()
    connection.connection_made(sink)  # type: ignore[arg-type]
    connection.data_received(f.PREFACE + f.settings_frame({}))
    request = codec.encode_call_request("predict", (), {"asset": "BTC"})
    message = f.grpc_message(request)
    block = request_block(CALL, pipelined=True)
    for stream_id in range(1, 2 * 2000, 4):  # two pipelined calls per write
        frames = b"".join(
            f.headers_frames(sid, block, False, 16384)
            + f.frame_header(len(message), f.DATA, f.END_STREAM, sid)
            + message
            for sid in (stream_id, stream_id + 2)
        )
        connection.data_received(frames)
        while server.dispatcher.busy:  # noqa: ASYNC110 - the first call runs on the worker
            await asyncio.sleep(0.001)
    assert sink.written.count(b"grpc-status") >= 2000
    assert connection.streams == {}
    assert connection._stream_recv == {}
    assert connection.stream_windows == {}
    assert connection.queued == 0
