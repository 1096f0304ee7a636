"""Turn a child's output pipe into text lines, without ever blocking on a long line.

Bytes are split on ``\\n`` by hand instead of ``StreamReader.readline()``: that one
raises on a line longer than its buffer limit, and a worker printing one huge line
must not kill its own log reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

MAX_LINE_BYTES = 8192
"""A longer line is cut here (and marked with ``…``); the rest of it is dropped."""
CHUNK_BYTES = 65536
CUT_MARK = "…"


def decode_line(raw: bytes, max_bytes: int = MAX_LINE_BYTES) -> str:
    """Raw text: invalid UTF-8 replaced, ANSI codes and brackets kept, ``\\r\\n`` ending removed."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if len(raw) > max_bytes:
        return raw[:max_bytes].decode("utf-8", errors="replace") + CUT_MARK
    return raw.decode("utf-8", errors="replace")


class LineSplitter:
    """Bytes in, complete lines out. Keeps at most ``max_bytes`` of a pending line."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_bytes
        self._pending = b""
        self._skipping = False
        """True while dropping the rest of a line that was already cut and emitted."""

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        parts = (self._pending + data).split(b"\n")
        self._pending = parts.pop()
        for raw in parts:
            if self._skipping:
                self._skipping = False  # the end of a cut line: already emitted
                continue
            out.append(decode_line(raw, self._max))
        if self._skipping:
            self._pending = b""
        elif len(self._pending) > self._max:
            out.append(decode_line(self._pending, self._max))
            self._pending = b""
            self._skipping = True
        return out

    def flush(self) -> list[str]:
        """The last line when the stream ended without a newline."""
        pending, self._pending = self._pending, b""
        skipping, self._skipping = self._skipping, False
        if not pending or skipping:
            return []
        return [decode_line(pending, self._max)]


async def read_lines(
    stream: asyncio.StreamReader,
    on_line: Callable[[str], None],
    *,
    max_bytes: int = MAX_LINE_BYTES,
) -> None:
    """Call ``on_line`` for every line of ``stream`` until EOF."""
    splitter = LineSplitter(max_bytes)
    while True:
        chunk = await stream.read(CHUNK_BYTES)
        if not chunk:
            break
        for line in splitter.feed(chunk):
            on_line(line)
    for line in splitter.flush():
        on_line(line)
