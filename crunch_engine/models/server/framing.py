"""HTTP/2 framing constants and builders (RFC 9113), and the HPACK encoding we emit.

Shared by the model server and the client's fast path. We only ever encode header
fields as "literal without indexing" (or static-table indexed) and without Huffman:
such blocks do not touch the HPACK dynamic table, so a block is a constant that can be
built once and written for every request or response.
"""

from __future__ import annotations

import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9

# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# SETTINGS identifiers.
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6

# Error codes.
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9

DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384
MAX_WINDOW = 2**31 - 1
MAX_FRAME_LIMIT = 2**24 - 1

# What both our endpoints advertise: big windows (one grant covers any ordinary message
# on loopback) and 1 MiB frames (a large message needs few frames).
LOCAL_WINDOW = 16 * 1024 * 1024
LOCAL_MAX_FRAME = 1024 * 1024

# gRPC status codes used on the wire.
GRPC_OK = 0
GRPC_CANCELLED = 1
GRPC_UNKNOWN = 2
GRPC_DEADLINE_EXCEEDED = 4
GRPC_NOT_FOUND = 5
GRPC_RESOURCE_EXHAUSTED = 8
GRPC_UNIMPLEMENTED = 12
GRPC_INTERNAL = 13
GRPC_UNAVAILABLE = 14

PIPELINE_HEADER = b"x-crunch-pipeline"
"""Request header ``1``: the client pipelines (queue me). Setup response header ``N``:
the server queues up to N calls per connection."""

_HEADER = struct.Struct(">HBBBL")  # 24-bit length as (high 16, low 8), type, flags, stream


def frame_header(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    """The 9-byte frame header."""
    return _HEADER.pack(length >> 8, length & 0xFF, kind, flags, stream_id)


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(len(payload) >> 8, len(payload) & 0xFF, kind, flags, stream_id) + payload


def settings_frame(values: dict[int, int]) -> bytes:
    payload = b"".join(struct.pack(">HL", key, value) for key, value in values.items())
    return frame(SETTINGS, 0, 0, payload)


SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def parse_settings(payload: bytes | bytearray) -> list[tuple[int, int]]:
    return [struct.unpack_from(">HL", payload, i) for i in range(0, len(payload), 6)]


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">L", increment))


def rst_stream(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">L", code))


def goaway(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, struct.pack(">LL", last_stream_id, code) + debug)


def headers_frames(stream_id: int, block: bytes, end_stream: bool, max_frame: int) -> bytes:
    """HEADERS (+ CONTINUATION frames when the block exceeds the peer's frame size)."""
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_frame:
        return frame_header(len(block), HEADERS, flags | END_HEADERS, stream_id) + block
    parts = [frame(HEADERS, flags, stream_id, block[:max_frame])]
    offset = max_frame
    while offset < len(block):
        chunk = block[offset : offset + max_frame]
        offset += len(chunk)
        last = END_HEADERS if offset >= len(block) else 0
        parts.append(frame(CONTINUATION, last, stream_id, chunk))
    return b"".join(parts)


def grpc_message(payload: bytes) -> bytes:
    """The length-prefixed gRPC message (uncompressed)."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


# -- HPACK (RFC 7541) encoding: literals without indexing, no Huffman -------------------


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer with an N-bit prefix; ``first`` holds the representation bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(raw: bytes) -> bytes:
    return hpack_int(len(raw), 7) + raw


def literal(name: bytes, value: bytes) -> bytes:
    """A "literal header field without indexing, new name" (touches no dynamic table)."""
    return b"\x00" + hpack_string(name) + hpack_string(value)


def percent_encode(message: str) -> bytes:
    """grpc-message encoding: printable ASCII except '%' as is, other UTF-8 bytes as %XX."""
    raw = message.encode("utf-8", "replace")
    if all(0x20 <= b <= 0x7E and b != 0x25 for b in raw):
        return raw
    return b"".join(bytes((b,)) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b for b in raw)


def percent_decode(raw: bytes) -> str:
    if b"%" not in raw:
        return raw.decode("utf-8", "replace")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 3 <= len(raw):
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


STATUS_200 = b"\x88"  # ":status: 200" is static-table entry 8
METHOD_POST = b"\x83"  # ":method: POST" is static entry 3
SCHEME_HTTP = b"\x86"  # ":scheme: http" is static entry 6
CONTENT_TYPE_GRPC = literal(b"content-type", b"application/grpc")
