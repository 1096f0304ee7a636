"""Response models of the API (the OpenAPI schema the web UI and the fuzz tests read).

Timestamps are timezone-aware datetimes: pydantic serialises them ISO-8601 with offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class ControlInfo(BaseModel):
    enabled: bool
    """Process control actions are possible (an API key is configured)."""
    requires_key: bool
    """Control reads need the key."""
    available: bool
    """A supervisor runs in this process (False for an API without workers)."""


class Info(BaseModel):
    crunch_id: str
    version: str
    pack: str
    database: str
    feed_provider: str
    leaderboards: list[str]
    started_at: datetime
    control: ControlInfo


class ReportSchema(BaseModel):
    schema_version: int
    leaderboard_columns: list[dict[str, Any]]
    metrics_widgets: list[dict[str, Any]]


class ModelOut(BaseModel):
    model_id: str
    model_name: str
    cruncher_name: str
    cruncher_id: str
    deployment_id: str


class FeedOut(BaseModel):
    source: str
    subject: str
    kind: str
    granularity: str
    record_count: int
    oldest_ts: datetime | None
    newest_ts: datetime | None
    watermark_ts: datetime | None
    watermark_updated_at: datetime | None


class FeedRecordOut(BaseModel):
    source: str
    subject: str
    kind: str
    granularity: str
    ts_event: datetime
    ts_ingested: datetime | None
    values: dict[str, Any]
    meta: dict[str, Any]


class PredictionOut(BaseModel):
    id: str
    model_id: str
    prediction_config_id: str
    scope_key: str
    scope: dict[str, Any]
    status: str
    failure_reason: str | None
    exec_time_ms: float | None = Field(description="Model call time in milliseconds")
    score_value: float | None
    score_failed: bool
    score_failed_reason: str | None
    score_status: str
    scored_at: datetime | None
    performed_at: datetime
    resolvable_at: datetime


class SnapshotOut(BaseModel):
    id: str
    leaderboard_key: str
    created_at: datetime
    entries: list[dict[str, Any]]


class ModelHealthOut(BaseModel):
    model_id: str
    model_name: str
    state: str
    deployment_id: str | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    counts: dict[str, int]
    consecutive_failures: int
    last_error: str | None
    last_error_at: datetime | None
    restarts: int
    updated_at: datetime | None
