"""Spawn one child with pipes, and learn of its exit even while its pipes stay open.

Every child runs in its own session (so its pid is its process group id), with
``PYTHONUNBUFFERED=1`` and behind the confine script (parent-death signal).

asyncio's ``Process.wait()`` (Python 3.11, default loop) only returns once the stdout
and stderr pipes are closed too, so a grandchild that inherited them would hide the
worker's death. The protocol below resolves a future on the exit itself, which both
asyncio's loop and uvloop report as soon as the child is reaped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from asyncio.subprocess import SubprocessStreamProtocol
from dataclasses import dataclass
from pathlib import Path

from crunch_engine.models.orchestrator.environment import ResourceLimits, confined_argv
from crunch_engine.supervisor.models import ProcessSpec

STREAM_LIMIT = 2**16


class ExitNotifyingProtocol(SubprocessStreamProtocol):
    """The standard stream protocol plus ``exited``, done when the process exits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=STREAM_LIMIT, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


@dataclass(slots=True)
class Child:
    """A running (or exited) child: its streams, its exit, and the transport to close."""

    process: asyncio.subprocess.Process
    transport: asyncio.SubprocessTransport
    exited: asyncio.Future[None]
    stopping: bool = False
    """Set when the supervisor stops this child on purpose: its exit is then expected."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait(self) -> int:
        """The exit code (negative for a signal), without waiting for the pipes."""
        await asyncio.shield(self.exited)
        code = self.transport.get_returncode()
        assert code is not None
        return code

    def close(self) -> None:
        """Release the pipes (after the readers are done or given up)."""
        self.transport.close()


async def spawn_child(argv: list[str], *, env: dict[str, str], cwd: Path | None) -> Child:
    """``argv`` in a new session (its own process group), stdin from /dev/null."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: ExitNotifyingProtocol(loop),
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=os.fspath(cwd) if cwd is not None else None,
        start_new_session=True,
    )
    process = asyncio.subprocess.Process(transport, protocol, loop)
    return Child(process, transport, protocol.exited)


def child_environment(spec: ProcessSpec) -> dict[str, str]:
    """``env`` (or ``os.environ``) + ``extra_env``; always unbuffered so lines arrive live."""
    env = dict(os.environ if spec.env is None else spec.env)
    env.update(spec.extra_env)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def resolve_program(program: str, env: dict[str, str]) -> str:
    """The confine script ``execv``s (no PATH search), so a bare name is looked up here."""
    if os.sep in program:
        return program
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(f"{program!r} not found on PATH")
    return found


async def spawn_confined(spec: ProcessSpec) -> Child:
    """Spawn ``spec.argv`` behind the confine script; OSError when it cannot start.

    confine.py arms PR_SET_PDEATHSIG=SIGKILL and then execs the command (same pid), so
    the child dies with the supervisor even when that is SIGKILLed. Not a preexec_fn:
    running Python between fork and exec can crash the child of a threaded parent.
    """
    env = child_environment(spec)
    program = resolve_program(spec.argv[0], env)
    argv = confined_argv(ResourceLimits(), [program, *spec.argv[1:]])
    return await spawn_child(argv, env=env, cwd=spec.cwd)
