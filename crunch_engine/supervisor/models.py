"""The supervisor's boundary types (pydantic v2), shaped exactly as docs/api.md says.

The API serialises these as they are, and the TUI reads them, so field names are a
contract: change them only together with docs/api.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ProcessState(StrEnum):
    """Where one supervised process is in its life (see ``managed.TRANSITIONS``)."""

    STARTING = "starting"
    """Spawned, not yet up for ``stable_after_seconds``: an exit now is a quick failure."""
    RUNNING = "running"
    """Stayed up long enough: the start counts as successful, the failure count is reset."""
    BACKOFF = "backoff"
    """Exited; waiting out the backoff delay before the next start."""
    EXITED = "exited"
    """Exited and not restarted (restart policy ``on-failure`` with code 0, or ``never``)."""
    FATAL = "fatal"
    """Too many quick failures in a row; stays down until started again by hand."""
    STOPPING = "stopping"
    """SIGTERM sent to its process group; SIGKILL follows after the grace period."""
    STOPPED = "stopped"
    """Not running because nobody asked it to run (initial state) or it was stopped."""


RestartPolicy = Literal["always", "on-failure", "never"]
"""``always``: every exit is restarted (workers run forever, so even code 0 is a
failure); ``on-failure``: a clean exit (code 0) ends in ``exited``; ``never``: every
exit ends in ``exited``."""

Stream = Literal["stdout", "stderr"]


class ProcessSpec(BaseModel):
    """What to run and how to treat it. Immutable: the supervisor keeps it as given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] | None = None
    """The whole environment of the process; None inherits ``os.environ``."""
    extra_env: dict[str, str] = Field(default_factory=dict)
    """Merged on top of ``env`` (or of ``os.environ``)."""
    cwd: Path | None = None
    stable_after_seconds: float = Field(3.0, ge=0)
    backoff_initial_seconds: float = Field(1.0, gt=0)
    backoff_factor: float = Field(2.0, ge=1)
    backoff_max_seconds: float = Field(30.0, gt=0)
    backoff_jitter: float = Field(0.1, ge=0, lt=1)
    """Each delay is shortened by a random fraction up to this (never lengthened), so
    processes failing together do not restart in lockstep and the cap stays a cap."""
    max_quick_failures: int = Field(5, ge=1)
    stop_grace_seconds: float = Field(5.0, ge=0)
    autostart: bool = True
    restart: RestartPolicy = "always"
    stderr_tail_lines: int = Field(20, ge=0)
    """How many of the last stderr lines ``ProcessInfo.last_stderr`` keeps."""

    @field_validator("argv")
    @classmethod
    def _no_empty_program(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("argv[0] (the program) must not be empty")
        return value


class ProcessInfo(BaseModel):
    """A snapshot of one supervised process (``GET /control/processes``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    state: ProcessState
    pid: int | None = None
    started_at: datetime | None = None
    """When the current (or last) run was spawned, UTC."""
    uptime_seconds: float | None = None
    """Seconds since ``started_at`` while a process is alive, else None."""
    restarts: int = 0
    """How many times it was started again after its first start (automatic or by hand)."""
    last_exit_code: int | None = None
    """Negative for a signal (-9: SIGKILL), as ``subprocess`` reports it."""
    last_stderr: list[str] = Field(default_factory=list)
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    heartbeat_at: datetime | None = None
    """Last time the sampler saw it alive or it wrote a line."""
    argv: list[str] = Field(default_factory=list)


class LogLine(BaseModel):
    """One raw output line: ANSI codes and square brackets kept, never markup."""

    model_config = ConfigDict(frozen=True)

    seq: int
    """Monotonic across every process of one supervisor: a total order of its output."""
    process: str
    stream: Stream
    ts: datetime
    line: str


class SupervisorEvent(BaseModel):
    """What ``Supervisor.subscribe()`` yields: a state change or a log line."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["state", "log"]
    process: str
    info: ProcessInfo | None = None
    line: LogLine | None = None


class UnknownProcessError(KeyError):
    """A process name the supervisor does not know; the message lists the known ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        known = ", ".join(self.known) if self.known else "none"
        return f"unknown process {self.name!r}; known processes: {known}"
