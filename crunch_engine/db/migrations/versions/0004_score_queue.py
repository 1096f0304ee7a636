"""score_queue and prediction_scores: predictions become insert-only

Scoring used to update every prediction row in place; on PostgreSQL that rewrote the
wide row and all six of its index entries (a pending index on score_status prevents
heap-only updates). Pending predictions now wait in a narrow queue and outcomes are
appended to their own table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
JSON_PAYLOAD = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
STAGING = "score_queue_0004_staging"
SCORE_COLUMNS = (
    "score_status",
    "scored_at",
    "score_value",
    "score_success",
    "score_failed_reason",
    "resolve_attempts",
    "ground_truth_jsonb",
)


def upgrade() -> None:
    op.create_table(
        "prediction_scores",
        sa.Column("prediction_id", sa.String(length=160), nullable=False),
        sa.Column("score_status", sa.String(length=16), nullable=False),
        sa.Column("scored_at", UTC_DATETIME, nullable=False),
        sa.Column("score_value", sa.Float(), nullable=True),
        sa.Column("score_success", sa.Boolean(), nullable=True),
        sa.Column("score_failed_reason", sa.Text(), nullable=True),
        sa.Column("resolve_attempts", sa.Integer(), nullable=False),
        sa.Column("ground_truth_jsonb", JSON_PAYLOAD, nullable=True),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_prediction_scores")),
    )
    op.execute(
        f"INSERT INTO prediction_scores (prediction_id, {', '.join(SCORE_COLUMNS)}) "
        f"SELECT id, {', '.join(SCORE_COLUMNS)} FROM predictions "
        "WHERE score_status <> 'PENDING'"
    )
    # Pending rows wait in a staging table while ``predictions`` is rebuilt: on SQLite
    # the rebuild drops the old table, which would cascade into a queue keyed to it.
    op.execute(
        f"CREATE TABLE {STAGING} AS SELECT id AS prediction_id, resolvable_at, "
        "resolve_attempts, score_failed_reason AS last_reason FROM predictions "
        "WHERE score_status = 'PENDING'"
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_score_status_resolvable_at"))
        for column in SCORE_COLUMNS:
            batch_op.drop_column(column)
    op.create_table(
        "score_queue",
        sa.Column("prediction_id", sa.String(length=160), nullable=False),
        sa.Column("resolvable_at", UTC_DATETIME, nullable=False),
        sa.Column("resolve_attempts", sa.Integer(), nullable=False),
        sa.Column("last_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_score_queue_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_score_queue")),
    )
    with op.batch_alter_table("score_queue", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_score_queue_resolvable_at_prediction_id"),
            ["resolvable_at", "prediction_id"],
            unique=False,
        )
    op.execute(
        "INSERT INTO score_queue (prediction_id, resolvable_at, resolve_attempts, last_reason) "
        f"SELECT prediction_id, resolvable_at, resolve_attempts, last_reason FROM {STAGING}"
    )
    op.execute(f"DROP TABLE {STAGING}")


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "score_status", sa.String(length=16), nullable=False, server_default="PENDING"
            )
        )
        batch_op.add_column(sa.Column("score_value", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("score_success", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("score_failed_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("scored_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(
            sa.Column("resolve_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("ground_truth_jsonb", JSON_PAYLOAD, nullable=True))
    for column in SCORE_COLUMNS:
        op.execute(
            f"UPDATE predictions SET {column} = (SELECT s.{column} FROM prediction_scores s "
            "WHERE s.prediction_id = predictions.id) "
            "WHERE id IN (SELECT prediction_id FROM prediction_scores)"
        )
    op.execute(
        "UPDATE predictions SET "
        "resolve_attempts = (SELECT q.resolve_attempts FROM score_queue q "
        "WHERE q.prediction_id = predictions.id), "
        "score_failed_reason = (SELECT q.last_reason FROM score_queue q "
        "WHERE q.prediction_id = predictions.id) "
        "WHERE id IN (SELECT prediction_id FROM score_queue)"
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.alter_column("score_status", server_default=None)
        batch_op.alter_column("resolve_attempts", server_default=None)
        batch_op.create_index(
            batch_op.f("ix_predictions_score_status_resolvable_at"),
            ["score_status", "resolvable_at"],
            unique=False,
        )
    op.drop_table("prediction_scores")
    with op.batch_alter_table("score_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_score_queue_resolvable_at_prediction_id"))
    op.drop_table("score_queue")
