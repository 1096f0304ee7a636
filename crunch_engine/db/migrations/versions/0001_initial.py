"""initial canonical schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Frozen copies of the column types, so this revision never changes with the models.
UTC_DATETIME = sa.DateTime(timezone=True)
JSON_PAYLOAD = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leaderboards",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("leaderboard_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("entries_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("meta_jsonb", JSON_PAYLOAD, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboards")),
    )
    with op.batch_alter_table("leaderboards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_leaderboards_leaderboard_key_created_at"),
            ["leaderboard_key", "created_at"],
            unique=False,
        )

    op.create_table(
        "market_ingestion_state",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("asset", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("granularity", sa.String(length=16), nullable=False),
        sa.Column("last_event_ts", UTC_DATETIME, nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("meta_jsonb", JSON_PAYLOAD, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_ingestion_state")),
        sa.UniqueConstraint(
            "provider",
            "asset",
            "kind",
            "granularity",
            name=op.f("uq_market_ingestion_state_provider_asset_kind_granularity"),
        ),
    )
    op.create_table(
        "market_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("asset", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("granularity", sa.String(length=16), nullable=False),
        sa.Column("ts_event", UTC_DATETIME, nullable=False),
        sa.Column("ts_ingested", UTC_DATETIME, nullable=False),
        sa.Column("values_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("meta_jsonb", JSON_PAYLOAD, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_records")),
        sa.UniqueConstraint(
            "provider",
            "asset",
            "kind",
            "granularity",
            "ts_event",
            name=op.f("uq_market_records_provider_asset_kind_granularity_ts_event"),
        ),
    )
    with op.batch_alter_table("market_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_market_records_asset_kind_granularity_ts_event"),
            ["asset", "kind", "granularity", "ts_event"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_market_records_ts_event"), ["ts_event"], unique=False)

    op.create_table(
        "models",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=True),
        sa.Column("player_name", sa.String(length=256), nullable=True),
        sa.Column("deployment_id", sa.String(length=256), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("overall_score_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("scores_by_scope_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("health_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("meta_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
    )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_models_state"), ["state"], unique=False)

    op.create_table(
        "prediction_inputs",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("prediction_config_id", sa.String(length=64), nullable=False),
        sa.Column("scope_key", sa.String(length=128), nullable=False),
        sa.Column("performed_at", UTC_DATETIME, nullable=False),
        sa.Column("raw_input_jsonb", JSON_PAYLOAD, nullable=True),
        sa.Column("inference_input_jsonb", JSON_PAYLOAD, nullable=True),
        sa.Column("meta_jsonb", JSON_PAYLOAD, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_inputs")),
    )
    with op.batch_alter_table("prediction_inputs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prediction_inputs_scope_key_performed_at"),
            ["scope_key", "performed_at"],
            unique=False,
        )

    op.create_table(
        "scheduled_prediction_configs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("scope_key", sa.String(length=128), nullable=False),
        sa.Column("scope_template_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("schedule_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("meta_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_prediction_configs")),
        sa.UniqueConstraint("scope_key", name=op.f("uq_scheduled_prediction_configs_scope_key")),
    )
    op.create_table(
        "model_scores",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("model_id", sa.String(length=160), nullable=False),
        sa.Column("leaderboard_key", sa.String(length=64), nullable=False),
        sa.Column("computed_at", UTC_DATETIME, nullable=False),
        sa.Column("score_payload_jsonb", JSON_PAYLOAD, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_scores_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_scores")),
    )
    with op.batch_alter_table("model_scores", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_scores_leaderboard_key_computed_at"),
            ["leaderboard_key", "computed_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_model_scores_model_id_computed_at"),
            ["model_id", "computed_at"],
            unique=False,
        )

    op.create_table(
        "predictions",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("input_id", sa.String(length=160), nullable=True),
        sa.Column("model_id", sa.String(length=160), nullable=False),
        sa.Column("prediction_config_id", sa.String(length=64), nullable=False),
        sa.Column("scope_key", sa.String(length=128), nullable=False),
        sa.Column("scope_jsonb", JSON_PAYLOAD, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("exec_time_us", sa.Integer(), nullable=True),
        sa.Column("inference_output_jsonb", JSON_PAYLOAD, nullable=True),
        sa.Column("performed_at", UTC_DATETIME, nullable=False),
        sa.Column("resolvable_at", UTC_DATETIME, nullable=False),
        sa.Column("score_status", sa.String(length=16), nullable=False),
        sa.Column("score_value", sa.Float(), nullable=True),
        sa.Column("score_success", sa.Boolean(), nullable=True),
        sa.Column("score_failed_reason", sa.Text(), nullable=True),
        sa.Column("scored_at", UTC_DATETIME, nullable=True),
        sa.Column("resolve_attempts", sa.Integer(), nullable=False),
        sa.Column("ground_truth_jsonb", JSON_PAYLOAD, nullable=True),
        sa.ForeignKeyConstraint(
            ["input_id"],
            ["prediction_inputs.id"],
            name=op.f("fk_predictions_input_id_prediction_inputs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_predictions_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_predictions_input_id"), ["input_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_predictions_model_id_performed_at"),
            ["model_id", "performed_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_predictions_performed_at"), ["performed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_predictions_scope_key_performed_at"),
            ["scope_key", "performed_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_predictions_score_status_resolvable_at"),
            ["score_status", "resolvable_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_score_status_resolvable_at"))
        batch_op.drop_index(batch_op.f("ix_predictions_scope_key_performed_at"))
        batch_op.drop_index(batch_op.f("ix_predictions_performed_at"))
        batch_op.drop_index(batch_op.f("ix_predictions_model_id_performed_at"))
        batch_op.drop_index(batch_op.f("ix_predictions_input_id"))

    op.drop_table("predictions")
    with op.batch_alter_table("model_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_scores_model_id_computed_at"))
        batch_op.drop_index(batch_op.f("ix_model_scores_leaderboard_key_computed_at"))

    op.drop_table("model_scores")
    op.drop_table("scheduled_prediction_configs")
    with op.batch_alter_table("prediction_inputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prediction_inputs_scope_key_performed_at"))

    op.drop_table("prediction_inputs")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_models_state"))

    op.drop_table("models")
    with op.batch_alter_table("market_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_market_records_ts_event"))
        batch_op.drop_index(batch_op.f("ix_market_records_asset_kind_granularity_ts_event"))

    op.drop_table("market_records")
    op.drop_table("market_ingestion_state")
    with op.batch_alter_table("leaderboards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leaderboards_leaderboard_key_created_at"))

    op.drop_table("leaderboards")
