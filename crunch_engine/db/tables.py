"""The canonical schema: typed, indexed columns for what the protocol queries and
``*_jsonb`` columns for competition-specific payloads (JSONB on PostgreSQL, JSON on SQLite).

Every schema change goes through an Alembic migration (``crunch_engine/db/migrations``);
a test checks that these models and the migrations agree on both backends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crunch_engine.db.types import JsonPayload, UTCDateTime
from crunch_engine.timeutil import utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(160)
KEY = String(128)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ModelRow(Base):
    """A participant model as the engine knows it (identity, orchestrator state, health)."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    player_id: Mapped[str | None] = mapped_column(KEY)
    player_name: Mapped[str | None] = mapped_column(String(256))
    deployment_id: Mapped[str | None] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(32), default="UNKNOWN", index=True)
    overall_score_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)
    scores_by_scope_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)
    health_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)
    meta_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class PredictionInputRow(Base):
    """The input of one predict cycle, stored once and shared by every model's prediction."""

    __tablename__ = "prediction_inputs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    prediction_config_id: Mapped[str] = mapped_column(String(64))
    scope_key: Mapped[str] = mapped_column(KEY)
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    raw_input_jsonb: Mapped[Any] = mapped_column(JsonPayload, nullable=True)
    inference_input_jsonb: Mapped[Any] = mapped_column(JsonPayload, nullable=True)
    meta_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)

    __table_args__ = (Index(None, "scope_key", "performed_at"),)


class PredictionRow(Base):
    """One model's answer (or non-answer) for one scope of one cycle; written once and
    never updated (its score goes to ``prediction_scores``, its wait to ``score_queue``).

    ``input_id`` and ``model_id`` reference ``prediction_inputs`` and ``models`` without
    foreign keys (migration 0005): the per-row checks doubled the cost of the predict
    worker's critical write, and the worker writes a cycle's input with its predictions
    after registering its models, in one transaction."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    input_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    model_id: Mapped[str] = mapped_column(ID)
    prediction_config_id: Mapped[str] = mapped_column(String(64))
    scope_key: Mapped[str] = mapped_column(KEY)
    scope_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    """Call outcome: SUCCESS, FAILED, TIMEOUT, ABSENT or INVALID."""
    failure_reason: Mapped[str | None] = mapped_column(Text)
    exec_time_us: Mapped[int | None] = mapped_column(Integer)
    inference_output_jsonb: Mapped[Any] = mapped_column(JsonPayload, nullable=True)
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolvable_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "model_id", "performed_at"),
        Index(None, "scope_key", "performed_at"),
        Index(None, "performed_at"),
    )


class ScoreQueueRow(Base):
    """A prediction waiting for its score: enqueued with it, removed once it has an
    outcome. The score worker reads the queue oldest first; the predictions table is
    never updated, so scoring costs no rewrite of wide rows and their indexes. Written
    with its prediction (no foreign key to it, see ``PredictionRow``)."""

    __tablename__ = "score_queue"

    prediction_id: Mapped[str] = mapped_column(ID, primary_key=True)
    resolvable_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolve_attempts: Mapped[int] = mapped_column(Integer, default=0)
    """How often ground truth was asked for and not available yet."""
    last_reason: Mapped[str | None] = mapped_column(Text)
    """Why the last attempt could not resolve it."""

    __table_args__ = (Index(None, "resolvable_at", "prediction_id"),)


class PredictionScoreRow(Base):
    """The outcome of scoring one prediction, appended once (insert-only).

    SCORED (a score or a penalty) or UNRESOLVED (ground truth never became available
    before the deadline). No foreign key: rows are only written for predictions read
    through the queue, and a per-row key check would cost as much as the insert.
    """

    __tablename__ = "prediction_scores"

    prediction_id: Mapped[str] = mapped_column(ID, primary_key=True)
    score_status: Mapped[str] = mapped_column(String(16))
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score_value: Mapped[float | None] = mapped_column(Float)
    score_success: Mapped[bool | None] = mapped_column(Boolean)
    score_failed_reason: Mapped[str | None] = mapped_column(Text)
    resolve_attempts: Mapped[int] = mapped_column(Integer, default=0)
    ground_truth_jsonb: Mapped[Any] = mapped_column(JsonPayload, nullable=True)


class ModelScoreRow(Base):
    """A model's aggregated window scores at one point in time, per leaderboard."""

    __tablename__ = "model_scores"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    model_id: Mapped[str] = mapped_column(ID, ForeignKey("models.id", ondelete="CASCADE"))
    leaderboard_key: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score_payload_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)

    __table_args__ = (
        Index(None, "model_id", "computed_at"),
        Index(None, "leaderboard_key", "computed_at"),
    )


class LeaderboardRow(Base):
    """A ranked leaderboard snapshot; snapshots are pruned by a bounded retention policy."""

    __tablename__ = "leaderboards"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    leaderboard_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entries_jsonb: Mapped[list[dict[str, Any]]] = mapped_column(JsonPayload, default=list)
    meta_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)

    __table_args__ = (Index(None, "leaderboard_key", "created_at"),)


class MarketRecordRow(Base):
    """One market data point (a tick or a candle): the tape that ground truth comes from.

    Keyed by (provider, asset, kind, granularity, ts_event): the one index serves
    dedup, time-range reads per series and retention, and keeps bulk ingestion fast.
    """

    __tablename__ = "market_records"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    asset: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    granularity: Mapped[str] = mapped_column(String(16), primary_key=True)
    ts_event: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    ts_ingested: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    values_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload)
    meta_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)


class MarketIngestionStateRow(Base):
    """The watermark of one feed series: everything up to ``last_event_ts`` is stored."""

    __tablename__ = "market_ingestion_state"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    granularity: Mapped[str] = mapped_column(String(16))
    last_event_ts: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    meta_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)

    __table_args__ = (UniqueConstraint("provider", "asset", "kind", "granularity"),)


class ScheduledPredictionConfigRow(Base):
    """What to predict and when: a scope template and a schedule (from the pack)."""

    __tablename__ = "scheduled_prediction_configs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope_key: Mapped[str] = mapped_column(KEY, unique=True)
    scope_template_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)
    schedule_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    order: Mapped[int] = mapped_column(Integer, default=0)
    meta_jsonb: Mapped[dict[str, Any]] = mapped_column(JsonPayload, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class ScoreBucketRow(Base):
    """Sum and count of a model's scores per scope and hour of ``performed_at``.

    Rolling windows are sums of buckets, so aggregation costs grow with new scores,
    not with history; a scored prediction and its bucket increment commit together.
    """

    __tablename__ = "model_score_buckets"

    model_id: Mapped[str] = mapped_column(
        ID, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    scope_key: Mapped[str] = mapped_column(KEY, primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index(None, "scope_key", "bucket_start"),)


ALL_TABLES = [table.name for table in Base.metadata.sorted_tables]
