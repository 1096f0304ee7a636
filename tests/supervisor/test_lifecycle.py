"""The state machine on real subprocesses: stable start, crash loops, recovery, stopping."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time

import pytest

from crunch_engine.supervisor import ProcessState, Supervisor
from tests.supervisor.conftest import SpecFactory
from tests.supervisor.helpers import (
    CRASH,
    STUBBORN,
    TALKER,
    next_states,
    running,
    wait_state,
    wait_until,
)

S = ProcessState


@pytest.mark.both_loops
async def test_start_becomes_running_after_the_stable_period(make_spec: SpecFactory) -> None:
    spec = make_spec("talker", TALKER, stable_after_seconds=0.5)
    async with Supervisor([spec], sample_interval=0.2) as supervisor:
        subscription = supervisor.subscribe()
        info = supervisor.process("talker")
        assert info.state is S.STARTING
        assert info.pid is not None and info.argv == spec.argv
        assert info.started_at is not None and info.started_at.utcoffset() is not None
        begun = time.monotonic()
        await wait_state(supervisor, "talker", S.RUNNING)
        assert time.monotonic() - begun >= 0.3  # not before the stable period
        pid = info.pid
        assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # own session and group
        info = supervisor.process("talker")
        assert info.pid == pid and info.restarts == 0 and info.last_exit_code is None
        assert info.uptime_seconds is not None and info.uptime_seconds >= 0.5

        stopped = await supervisor.stop_process("talker")
        assert stopped.state is S.STOPPED and stopped.pid is None
        assert stopped.last_exit_code == -signal.SIGTERM
        assert stopped.uptime_seconds is None
        assert not running(pid)
        states = [info.state for info in await next_states(subscription, 3)]
        assert states == [S.RUNNING, S.STOPPING, S.STOPPED]


@pytest.mark.slow
async def test_crash_loop_backs_off_more_each_time_then_goes_fatal(
    make_spec: SpecFactory,
) -> None:
    spec = make_spec(
        "crasher",
        CRASH,
        stable_after_seconds=1.0,
        backoff_initial_seconds=0.2,
        backoff_factor=2.0,
        backoff_max_seconds=1.0,
        backoff_jitter=0.1,
        max_quick_failures=5,
    )
    supervisor = Supervisor([spec])
    subscription = supervisor.subscribe()
    marks: list[tuple[float, ProcessState]] = []

    async def record() -> None:
        async for event in subscription:
            if event.kind == "state" and event.info is not None:
                marks.append((time.monotonic(), event.info.state))
                if event.info.state is S.FATAL:
                    return

    recorder = asyncio.create_task(record())
    try:
        await supervisor.start()
        await asyncio.wait_for(recorder, timeout=15)
        info = supervisor.process("crasher")
        assert info.state is S.FATAL
        assert info.last_exit_code == 1 and info.pid is None
        assert info.restarts == 4  # five starts
        assert "boom: something went wrong" in info.last_stderr
        states = [state for _, state in marks]
        assert states == [S.STARTING, S.BACKOFF] * 4 + [S.STARTING, S.FATAL]
        waits = [
            later - at
            for (at, state), (later, _) in itertools.pairwise(marks)
            if state is S.BACKOFF
        ]
        bases = [0.2, 0.4, 0.8, 1.0]  # 1.6 capped at 1.0
        for wait, base in zip(waits, bases, strict=True):
            assert base * 0.9 - 0.03 <= wait <= base + 0.4, (waits, bases)
        assert waits[0] < waits[1] < waits[2], waits
        assert max(waits) <= 1.0 + 0.4

        await asyncio.sleep(0.5)  # fatal: nothing restarts it by itself
        assert supervisor.process("crasher").state is S.FATAL

        # By hand: started again with the failure count cleared, so the next crash
        # goes to backoff again instead of straight back to fatal.
        again = await supervisor.restart_process("crasher")
        assert again.state is S.STARTING and again.restarts == 5
        await wait_state(supervisor, "crasher", S.BACKOFF)
    finally:
        await supervisor.stop()
    assert supervisor.process("crasher").state is S.STOPPED


@pytest.mark.both_loops
async def test_kill_9_of_a_running_worker_is_recovered(make_spec: SpecFactory) -> None:
    spec = make_spec("talker", TALKER)
    async with Supervisor([spec]) as supervisor:
        await wait_state(supervisor, "talker", S.RUNNING)
        old = supervisor.process("talker").pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await wait_until(
            lambda: supervisor.process("talker").pid not in (None, old), what="a new pid"
        )
        info = supervisor.process("talker")
        assert info.restarts == 1
        assert info.last_exit_code == -signal.SIGKILL
        await wait_state(supervisor, "talker", S.RUNNING)
        assert running(info.pid or 0)


@pytest.mark.both_loops
async def test_stop_escalates_to_sigkill_after_the_grace_period(make_spec: SpecFactory) -> None:
    spec = make_spec("stubborn", STUBBORN, stop_grace_seconds=1.0)
    async with Supervisor([spec]) as supervisor:
        await wait_until(lambda: supervisor.logs("stubborn"), what="SIGTERM ignored")
        pid = supervisor.process("stubborn").pid
        begun = time.monotonic()
        info = await supervisor.stop_process("stubborn")
        elapsed = time.monotonic() - begun
        assert 1.0 <= elapsed <= 1.0 + 2.0, elapsed
        assert info.state is S.STOPPED and info.last_exit_code == -signal.SIGKILL
        assert pid is not None and not running(pid)


async def test_stop_and_start_by_hand(make_spec: SpecFactory) -> None:
    spec = make_spec("talker", TALKER, autostart=False)
    async with Supervisor([spec]) as supervisor:
        assert supervisor.process("talker").state is S.STOPPED
        assert (await supervisor.stop_process("talker")).state is S.STOPPED  # no-op
        first = await supervisor.start_process("talker")
        assert first.state is S.STARTING and first.restarts == 0
        assert (await supervisor.start_process("talker")).pid == first.pid  # already up
        second = await supervisor.restart_process("talker")
        assert second.pid != first.pid and second.restarts == 1
        assert first.pid is not None and not running(first.pid)
    assert supervisor.process("talker").state is S.STOPPED
    await supervisor.stop()  # idempotent


async def test_restart_policies(make_spec: SpecFactory) -> None:
    specs = [
        make_spec("clean-on-failure", CRASH, "0", restart="on-failure"),
        make_spec("crash-on-failure", CRASH, "2", restart="on-failure"),
        make_spec("clean-always", CRASH, "0"),
        make_spec("crash-never", CRASH, "2", restart="never"),
    ]
    async with Supervisor(specs) as supervisor:
        await wait_state(supervisor, "clean-on-failure", S.EXITED)
        await wait_state(supervisor, "crash-never", S.EXITED)
        await wait_until(lambda: supervisor.process("crash-on-failure").restarts >= 1)
        await wait_until(lambda: supervisor.process("clean-always").restarts >= 1)
        assert supervisor.process("clean-on-failure").last_exit_code == 0
        assert supervisor.process("crash-never").last_exit_code == 2
    # stopping leaves an exited process as it was: its exit code says why it ended
    assert supervisor.process("crash-never").state is S.EXITED


async def test_a_program_that_cannot_start_is_reported(make_spec: SpecFactory, tmp_path) -> None:
    missing = make_spec("missing", TALKER, max_quick_failures=1).model_copy(
        update={"argv": ["no-such-program-crunch"]}
    )
    bad_cwd = make_spec("bad-cwd", TALKER, max_quick_failures=1, cwd=tmp_path / "nowhere")
    async with Supervisor([missing, bad_cwd]) as supervisor:
        for name in ("missing", "bad-cwd"):
            await wait_state(supervisor, name, S.FATAL)
            info = supervisor.process(name)
            assert info.pid is None and info.last_exit_code is None
            assert any("cannot start" in line for line in info.last_stderr), info.last_stderr


async def test_environment_and_process_group(make_spec: SpecFactory, monkeypatch) -> None:
    monkeypatch.setenv("CRUNCH_TEST_INHERITED", "from-parent")
    script = """
        import os
        for key in ("CRUNCH_TEST_INHERITED", "EXTRA", "PYTHONUNBUFFERED"):
            print(key, os.environ.get(key))
        import time
        time.sleep(30)
    """
    inherit = make_spec("inherit", script, extra_env={"EXTRA": "yes"})
    own = make_spec("own", script, env={"PATH": os.environ["PATH"]}, extra_env={"EXTRA": "x"})
    async with Supervisor([inherit, own]) as supervisor:
        await wait_until(lambda: len(supervisor.logs()) >= 6, what="six lines")
        lines = {name: [x.line for x in supervisor.logs(name)] for name in ("inherit", "own")}
    assert lines["inherit"] == [
        "CRUNCH_TEST_INHERITED from-parent",
        "EXTRA yes",
        "PYTHONUNBUFFERED 1",
    ]
    assert lines["own"] == ["CRUNCH_TEST_INHERITED None", "EXTRA x", "PYTHONUNBUFFERED 1"]


async def test_cpu_and_memory_are_sampled_in_the_background(make_spec: SpecFactory) -> None:
    spec = make_spec("talker", TALKER)
    async with Supervisor([spec], sample_interval=0.2) as supervisor:
        first = supervisor.process("talker")
        assert first.rss_bytes is None and first.cpu_percent is None  # not yet sampled
        await wait_until(
            lambda: supervisor.process("talker").cpu_percent is not None, what="a CPU sample"
        )
        info = supervisor.process("talker")
        assert info.rss_bytes is not None and info.rss_bytes > 1_000_000
        assert info.cpu_percent is not None and info.cpu_percent >= 0
        assert info.heartbeat_at is not None and info.heartbeat_at.utcoffset() is not None
        beat = info.heartbeat_at
        await wait_until(lambda: supervisor.process("talker").heartbeat_at != beat)


async def test_a_cancelled_stop_still_kills_and_leaves_a_usable_process(
    make_spec: SpecFactory,
) -> None:
    spec = make_spec("stubborn", STUBBORN, stop_grace_seconds=1.5)
    async with Supervisor([spec]) as supervisor:
        await wait_until(lambda: supervisor.logs("stubborn"), what="SIGTERM ignored")
        pid = supervisor.process("stubborn").pid
        assert pid is not None
        stopping = asyncio.create_task(supervisor.stop_process("stubborn"))
        await wait_state(supervisor, "stubborn", S.STOPPING)
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
        assert supervisor.process("stubborn").state is S.STOPPED
        await wait_until(lambda: not running(pid), what="the SIGKILLed process to die")
        again = await supervisor.start_process("stubborn")
        assert again.state is S.STARTING and again.pid not in (None, pid)
        await wait_state(supervisor, "stubborn", S.RUNNING)


async def test_concurrent_actions_are_serialised(make_spec: SpecFactory) -> None:
    spec = make_spec("talker", TALKER)
    async with Supervisor([spec]) as supervisor:
        pids = set()
        for _ in range(3):
            results = await asyncio.gather(
                supervisor.restart_process("talker"),
                supervisor.start_process("talker"),
                supervisor.restart_process("talker"),
            )
            pids.update(info.pid for info in results)
        last = await supervisor.stop_process("talker")
        assert last.state is S.STOPPED
        assert None not in pids and not any(running(pid) for pid in pids if pid)
