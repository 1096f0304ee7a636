"""Predictions and their queue entries without foreign keys

A predict cycle writes every model's prediction and its score-queue entry on the
worker's critical path. The three foreign keys checked on every one of those rows
(prediction -> input, prediction -> model, queue entry -> prediction) cost as much as
the inserts themselves on PostgreSQL (per-row constraint triggers: 2 ms of a 5 ms
100-model cycle) and were never used for anything else: nothing deletes models,
inputs or predictions, so their cascades never fired. The engine writes a cycle's
input, predictions and queue entries in one transaction (one statement on PostgreSQL)
after registering the cycle's models, which keeps the references whole. The index on
``predictions.input_id`` served only the input foreign key and goes with it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The queue first: on SQLite a batch rebuild of ``predictions`` drops the old table,
    # which would cascade into a queue still keyed to it.
    with op.batch_alter_table("score_queue", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_score_queue_prediction_id_predictions"), type_="foreignkey"
        )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_predictions_input_id_prediction_inputs"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_predictions_model_id_models"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_predictions_input_id"))


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_predictions_input_id"), ["input_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_predictions_model_id_models"),
            "models",
            ["model_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_predictions_input_id_prediction_inputs"),
            "prediction_inputs",
            ["input_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("score_queue", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_score_queue_prediction_id_predictions"),
            "predictions",
            ["prediction_id"],
            ["id"],
            ondelete="CASCADE",
        )
