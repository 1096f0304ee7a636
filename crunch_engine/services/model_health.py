"""Per-model health from call results: latency percentiles, status counts, failures."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crunch_engine.models.contracts import CallResult, CallStatus, ModelEndpoint
from crunch_engine.timeutil import to_iso, utc_now

LATENCY_WINDOW = 200


def percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class _Health:
    latencies_us: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    counts: dict[str, int] = field(default_factory=dict)
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    deployment_id: str | None = None
    restarts: int = 0


class HealthBook:
    """Accumulates call results; ``snapshot()`` is what the models table stores."""

    def __init__(self) -> None:
        self._models: dict[str, _Health] = {}

    def record(
        self, results: Mapping[str, CallResult], endpoints: Mapping[str, ModelEndpoint]
    ) -> None:
        for model_id, endpoint in endpoints.items():
            health = self._models.setdefault(model_id, _Health())
            if health.deployment_id is not None and endpoint.deployment_id != health.deployment_id:
                health.restarts += 1
            health.deployment_id = endpoint.deployment_id
            result = results.get(model_id)
            status = result.status.value if result is not None else CallStatus.ABSENT.value
            health.counts[status] = health.counts.get(status, 0) + 1
            if result is not None and result.status is CallStatus.SUCCESS:
                health.latencies_us.append(result.exec_time_us)
                health.consecutive_failures = 0
            else:
                health.consecutive_failures += 1
                health.last_error = (result.detail if result else None) or status
                health.last_error_at = to_iso(utc_now())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            model_id: {
                "deployment_id": h.deployment_id,
                "latency_p50_us": percentile(list(h.latencies_us), 50),
                "latency_p95_us": percentile(list(h.latencies_us), 95),
                "counts": dict(h.counts),
                "consecutive_failures": h.consecutive_failures,
                "last_error": h.last_error,
                "last_error_at": h.last_error_at,
                "restarts": h.restarts,
            }
            for model_id, h in self._models.items()
        }
