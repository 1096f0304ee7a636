"""model_score_buckets: incremental rolling-window aggregates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_score_buckets",
        sa.Column("model_id", sa.String(length=160), nullable=False),
        sa.Column("scope_key", sa.String(length=128), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_score_buckets_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "model_id", "scope_key", "bucket_start", name=op.f("pk_model_score_buckets")
        ),
    )
    with op.batch_alter_table("model_score_buckets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_score_buckets_scope_key_bucket_start"),
            ["scope_key", "bucket_start"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("model_score_buckets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_score_buckets_scope_key_bucket_start"))

    op.drop_table("model_score_buckets")
