"""Per-model bookkeeping of the client: readiness, failure streaks, cooldown, health."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from crunch_engine.models.client.channel import ModelChannel
from crunch_engine.models.client.fastpath import FastConnection
from crunch_engine.models.contracts import CallStatus, ModelEndpoint, ModelHealth

LATENCY_WINDOW = 128


@dataclass(slots=True)
class Streak:
    """Consecutive non-successes of one method of one model."""

    failures: int = 0
    timeouts: int = 0

    @property
    def length(self) -> int:
        return self.failures + self.timeouts


@dataclass(slots=True)
class ModelSlot:
    """Everything the client knows about one model id (across its deployments)."""

    endpoint: ModelEndpoint
    channel: ModelChannel | None = None
    fast: FastConnection | None = None
    """The lean pipelining connection, when the server advertised it at Setup."""
    fast_task: asyncio.Task[None] | None = None
    ready: bool = False
    reason: str = "connecting"
    """Why the model is not ready (shown in ABSENT results)."""
    connect_task: asyncio.Task[None] | None = None
    cooldown_until: float = 0.0
    cooldown_reason: str = ""
    streaks: dict[str, Streak] = field(default_factory=dict)
    latencies_us: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    counts: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    restarts: int = 0

    def record(
        self, method: str, status: CallStatus, exec_time_us: int, detail: str | None
    ) -> Streak:
        """Count one outcome; SUCCESS resets this method's streak only."""
        self.counts[status] = self.counts.get(status, 0) + 1
        self.latencies_us.append(exec_time_us)
        streak = self.streaks.get(method)
        if streak is None:
            streak = self.streaks[method] = Streak()
        if status is CallStatus.SUCCESS:
            streak.failures = streak.timeouts = 0
        elif status is CallStatus.TIMEOUT:
            streak.timeouts += 1
            self.last_error = detail
        else:
            streak.failures += 1
            self.last_error = detail
        return streak

    def start_cooldown(self, seconds: float, reason: str) -> None:
        self.cooldown_until = time.monotonic() + seconds
        self.cooldown_reason = reason
        for streak in self.streaks.values():
            streak.failures = streak.timeouts = 0

    def cooldown_left(self, now: float) -> float:
        return self.cooldown_until - now if self.cooldown_until > now else 0.0

    def new_deployment(self, endpoint: ModelEndpoint) -> None:
        """A restarted model starts with a clean slate (but keeps its history of counts)."""
        self.endpoint = endpoint
        self.restarts += 1
        self.cooldown_until = 0.0
        self.cooldown_reason = ""
        self.streaks.clear()

    def health(self) -> ModelHealth:
        return ModelHealth(
            model_id=self.endpoint.model_id,
            deployment_id=self.endpoint.deployment_id,
            latencies_us=list(self.latencies_us),
            counts={str(k): v for k, v in self.counts.items()},
            consecutive_failures=max((s.length for s in self.streaks.values()), default=0),
            last_error=self.last_error,
            restarts=self.restarts,
        )
