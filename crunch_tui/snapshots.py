"""View models: what the screens render, parsed once from the API's JSON.

Parsing happens in the background poll, never on the render path; screens only read
these frozen objects. Unknown or missing fields degrade to ``None`` rather than raise,
so a newer or older server never crashes the UI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PROCESS_STATES = ("starting", "running", "backoff", "exited", "fatal", "stopping", "stopped")
FAILED_PROCESS_STATES = frozenset({"backoff", "exited", "fatal"})


def parse_ts(value: object) -> datetime | None:
    """ISO-8601 (with ``Z`` or an offset) to an aware datetime; None when absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _int(value: object) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    """One model on the newest leaderboard snapshot."""

    rank: int
    model_id: str
    model_name: str
    cruncher_name: str
    scores: Mapping[str, float | None]
    counts: Mapping[str, int | None]
    status: str | None
    rank_change: int | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LeaderboardRow:
        scores = {k[6:]: _float(v) for k, v in data.items() if k.startswith("score_")}
        counts = {k[6:]: _int(v) for k, v in data.items() if k.startswith("count_")}
        return cls(
            rank=_int(data.get("rank")) or 0,
            model_id=str(data.get("model_id", "")),
            model_name=str(data.get("model_name") or data.get("model_id", "")),
            cruncher_name=str(data.get("cruncher_name") or ""),
            scores=scores,
            counts=counts,
            status=_str(data.get("status")),
            rank_change=_int(data.get("rank_change")),
            updated_at=parse_ts(data.get("updated_at")),
        )


@dataclass(frozen=True, slots=True)
class ModelHealth:
    """Per-model health from ``/control/models/health``."""

    model_id: str
    model_name: str
    state: str
    deployment_id: str | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    counts: Mapping[str, int]
    consecutive_failures: int
    last_error: str | None
    last_error_at: datetime | None
    restarts: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelHealth:
        raw_counts = data.get("counts") or {}
        return cls(
            model_id=str(data.get("model_id", "")),
            model_name=str(data.get("model_name") or data.get("model_id", "")),
            state=str(data.get("state") or "UNKNOWN"),
            deployment_id=_str(data.get("deployment_id")),
            latency_p50_ms=_float(data.get("latency_p50_ms")),
            latency_p95_ms=_float(data.get("latency_p95_ms")),
            counts={str(k): _int(v) or 0 for k, v in dict(raw_counts).items()},
            consecutive_failures=_int(data.get("consecutive_failures")) or 0,
            last_error=_str(data.get("last_error")),
            last_error_at=parse_ts(data.get("last_error_at")),
            restarts=_int(data.get("restarts")) or 0,
        )

    @property
    def condition(self) -> str:
        """running / failing / absent: the three buckets of the dashboard's health summary."""
        if self.state.upper() not in {"RUNNING"}:
            return "absent"
        return "failing" if self.consecutive_failures > 0 else "running"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One supervised worker, as ``/control/processes`` reports it."""

    name: str
    state: str
    pid: int | None
    uptime_seconds: float | None
    restarts: int
    last_exit_code: int | None
    last_stderr: tuple[str, ...]
    cpu_percent: float | None
    rss_bytes: int | None
    argv: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessInfo:
        return cls(
            name=str(data.get("name", "")),
            state=str(data.get("state") or "unknown"),
            pid=_int(data.get("pid")),
            uptime_seconds=_float(data.get("uptime_seconds")),
            restarts=_int(data.get("restarts")) or 0,
            last_exit_code=_int(data.get("last_exit_code")),
            last_stderr=tuple(str(s) for s in data.get("last_stderr") or ()),
            cpu_percent=_float(data.get("cpu_percent")),
            rss_bytes=_int(data.get("rss_bytes")),
            argv=tuple(str(s) for s in data.get("argv") or ()),
        )

    @property
    def failed(self) -> bool:
        return self.state in FAILED_PROCESS_STATES


@dataclass(frozen=True, slots=True)
class LogLine:
    """One raw output line of a worker (may hold ANSI colours and brackets, never markup)."""

    seq: int
    process: str
    stream: str
    line: str
    ts: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogLine:
        return cls(
            seq=_int(data.get("seq")) or 0,
            process=str(data.get("process") or "?"),
            stream=str(data.get("stream") or "stdout"),
            line=str(data.get("line") or ""),
            ts=parse_ts(data.get("ts")),
        )


@dataclass(frozen=True, slots=True)
class FeedTape:
    """The latest records of one feed, newest last, with the price series for a Sparkline."""

    source: str
    subject: str
    kind: str
    granularity: str
    times: tuple[datetime | None, ...]
    prices: tuple[float, ...]

    @property
    def key(self) -> str:
        return f"{self.source}/{self.subject}/{self.kind}/{self.granularity}"

    @classmethod
    def from_records(cls, feed: Mapping[str, Any], records: Sequence[Mapping[str, Any]]):
        times: list[datetime | None] = []
        prices: list[float] = []
        for record in reversed(records):  # the API answers newest first
            values = record.get("values") or {}
            price = _float(values.get("close", values.get("price")))
            if price is None:
                continue
            times.append(parse_ts(record.get("ts_event")))
            prices.append(price)
        return cls(
            source=str(feed.get("source", "")),
            subject=str(feed.get("subject", "")),
            kind=str(feed.get("kind", "")),
            granularity=str(feed.get("granularity", "")),
            times=tuple(times),
            prices=tuple(prices),
        )


@dataclass(frozen=True, slots=True)
class Prediction:
    """One row of ``/reports/predictions`` for the Models detail panel."""

    id: str
    scope_key: str
    status: str
    score_value: float | None
    score_failed_reason: str | None
    performed_at: datetime | None
    scored_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Prediction:
        return cls(
            id=str(data.get("id", "")),
            scope_key=str(data.get("scope_key") or ""),
            status=str(data.get("status") or ""),
            score_value=_float(data.get("score_value")),
            score_failed_reason=_str(data.get("score_failed_reason")),
            performed_at=parse_ts(data.get("performed_at")),
            scored_at=parse_ts(data.get("scored_at")),
        )


@dataclass(frozen=True, slots=True)
class HealthSummary:
    running: int = 0
    failing: int = 0
    absent: int = 0

    @classmethod
    def of(cls, health: Sequence[ModelHealth]) -> HealthSummary:
        buckets = {"running": 0, "failing": 0, "absent": 0}
        for model in health:
            buckets[model.condition] += 1
        return cls(**buckets)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the screens show, as of one poll. The UI is a function of the latest one."""

    leaderboard: tuple[LeaderboardRow, ...] = ()
    windows: tuple[str, ...] = ()
    health: tuple[ModelHealth, ...] = ()
    summary: HealthSummary = field(default_factory=HealthSummary)
    processes: tuple[ProcessInfo, ...] = ()
    feeds: tuple[FeedTape, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)
    fetched_at: datetime | None = None
    serial: int = 0
    problems: tuple[str, ...] = ()
    """Endpoints that answered with an error (e.g. control without a key): shown, not fatal."""

    @property
    def loaded(self) -> bool:
        return self.fetched_at is not None


def windows_of(rows: Sequence[LeaderboardRow]) -> tuple[str, ...]:
    """Score windows in the order the server lists them (first row wins)."""
    seen: dict[str, None] = {}
    for row in rows:
        for window in row.scores:
            seen.setdefault(window, None)
        for window in row.counts:
            seen.setdefault(window, None)
    return tuple(seen)
