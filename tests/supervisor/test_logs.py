"""Output capture: raw lines in order through ``logs()`` and ``subscribe()``."""

from __future__ import annotations

import asyncio

import pytest

from crunch_engine.supervisor import LogLine, ProcessState, Supervisor, SupervisorEvent
from tests.supervisor.conftest import SpecFactory
from tests.supervisor.helpers import TALKER, wait_until

ANSI_LINE = "\x1b[31mred\x1b[0m [red]not markup[/red]"

FLOOD = """
import sys
for i in range(int(sys.argv[1])):
    print(f"line {i}")
print("x" * 100_000)
sys.stdout.buffer.write(b"bad \\xff bytes\\n")
print("DONE")
import time
time.sleep(30)
"""


def by_stream(lines: list[LogLine], stream: str) -> list[str]:
    return [line.line for line in lines if line.stream == stream]


@pytest.mark.both_loops
async def test_lines_arrive_in_order_through_logs_and_subscribe(make_spec: SpecFactory) -> None:
    specs = [make_spec("one", TALKER, "50"), make_spec("two", TALKER, "50")]
    supervisor = Supervisor(specs)
    subscription = supervisor.subscribe()  # before start: sees everything
    received: list[SupervisorEvent] = []

    async def consume() -> None:
        async for event in subscription:
            received.append(event)

    consumer = asyncio.create_task(consume())
    async with supervisor:
        for name in ("one", "two"):
            await wait_until(
                lambda name=name: any(x.line == "READY" for x in supervisor.logs(name)),
                what=f"{name} READY",
            )
        one = supervisor.logs("one", limit=1000)
        merged = supervisor.logs(limit=1000)
        assert [x.line for x in supervisor.logs("one", limit=3)] == [x.line for x in one[-3:]]
    await asyncio.wait_for(consumer, 5)  # the stream ends once the supervisor stopped

    assert by_stream(one, "stdout") == [ANSI_LINE, *(f"out {i}" for i in range(50)), "READY"]
    assert by_stream(one, "stderr") == [f"err {i}" for i in range(50)]
    assert all(x.process == "one" and x.ts.utcoffset() is not None for x in one)
    seqs = [x.seq for x in merged]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == 2 * 102
    assert {x.process for x in merged} == {"one", "two"}
    assert supervisor.logs(limit=5) == merged[-5:]
    assert supervisor.logs(limit=0) == []

    streamed = [e.line for e in received if e.kind == "log" and e.line is not None]
    assert [x.seq for x in streamed] == seqs  # the same lines, in the same order
    assert streamed == merged
    states = [(e.process, e.info.state) for e in received if e.kind == "state" and e.info]
    assert states[-2:] in (
        [("one", ProcessState.STOPPED), ("two", ProcessState.STOPPED)],
        [("two", ProcessState.STOPPED), ("one", ProcessState.STOPPED)],
    )
    assert "err 49" in supervisor.process("one").last_stderr
    assert len(supervisor.process("one").last_stderr) == 20


async def test_ring_buffer_long_lines_and_bad_bytes(make_spec: SpecFactory) -> None:
    spec = make_spec("flood", FLOOD, "300")
    async with Supervisor([spec], log_lines=100) as supervisor:
        await wait_until(
            lambda: any(x.line == "DONE" for x in supervisor.logs("flood")), what="DONE"
        )
        lines = supervisor.logs("flood", limit=1000)
    assert len(lines) == 100  # the ring buffer keeps the newest
    assert [x.line for x in lines[:3]] == ["line 203", "line 204", "line 205"]
    long_line, bad, done = (x.line for x in lines[-3:])
    assert long_line == "x" * 8192 + "…"
    assert bad == "bad \ufffd bytes"
    assert done == "DONE"


async def test_a_slow_subscriber_never_blocks_the_supervisor(make_spec: SpecFactory) -> None:
    spec = make_spec("flood", FLOOD, "5000")
    supervisor = Supervisor([spec], log_lines=10_000)
    slow = supervisor.subscribe(queue_size=100)  # never read while the flood runs
    fast = supervisor.subscribe()
    fast_lines: list[str] = []

    async def consume() -> None:
        async for event in fast:
            if event.line is not None:
                fast_lines.append(event.line.line)

    consumer = asyncio.create_task(consume())
    async with supervisor:
        await wait_until(
            lambda: any(x.line == "DONE" for x in supervisor.logs("flood", limit=1)),
            what="the whole flood read",
        )
        assert len(supervisor.logs("flood", limit=10_000)) == 5003
    await asyncio.wait_for(consumer, 5)
    assert len(fast_lines) == 5003 and fast_lines[-1] == "DONE"
    assert len(slow) == 100 and slow.dropped > 4900
    kept = [event async for event in slow]
    assert kept[-1].kind == "state"  # it kept the newest events, up to the final stop
    assert kept[-1].info is not None and kept[-1].info.state is ProcessState.STOPPED
