"""A lean HTTP/1.1 keep-alive load generator: N concurrent connections, one request in
flight each, for a fixed duration; per-request latencies and status counts.

Written on asyncio streams with minimal parsing so that the generator, which shares
the 2 cores with the server under test, costs as little CPU as possible.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    path: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    bytes_received: int = 0

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status, length
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        await reader.readexactly(size + 2)
        total += size
        if size == 0:
            return status, total


async def _worker(host: str, port: int, request: bytes, until: float, result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            began = time.perf_counter()
            writer.write(request)
            try:
                status, size = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                result.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            result.latencies_ms.append((time.perf_counter() - began) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.bytes_received += size
    finally:
        writer.close()


async def run_load(
    host: str,
    port: int,
    path: str,
    *,
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n{extra}\r\n"
    ).encode()
    began = time.perf_counter()
    result = LoadResult(path, seconds)
    until = began + seconds
    await asyncio.gather(*(_worker(host, port, request, until, result) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - began
    return result
