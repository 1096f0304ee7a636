"""The engine's process supervisor: runs the workers, restarts them with backoff, stops
them without leaving orphans, and exposes their state, resources and output.

A library with no UI imports (the API and the TUI both read it). Modules: ``models``
(boundary types), ``backoff``, ``child`` (spawning, exit notification), ``lines`` (pipe
-> lines), ``groups`` (process-group signals), ``managed`` (one process and its state
machine), ``sampler`` (CPU/RSS), ``events`` (fan-out to subscribers), ``supervisor`` and
``workers`` (the engine's specs).
"""

from crunch_engine.supervisor.backoff import Backoff
from crunch_engine.supervisor.events import Subscription
from crunch_engine.supervisor.models import (
    LogLine,
    ProcessInfo,
    ProcessSpec,
    ProcessState,
    RestartPolicy,
    SupervisorEvent,
    UnknownProcessError,
)
from crunch_engine.supervisor.supervisor import Supervisor
from crunch_engine.supervisor.workers import WORKER_MODULES, default_specs

__all__ = [
    "WORKER_MODULES",
    "Backoff",
    "LogLine",
    "ProcessInfo",
    "ProcessSpec",
    "ProcessState",
    "RestartPolicy",
    "Subscription",
    "Supervisor",
    "SupervisorEvent",
    "UnknownProcessError",
    "default_specs",
]
