"""market_records keyed by (provider, asset, kind, granularity, ts_event)

The surrogate id and the two secondary indexes cost more at ingestion than they gave
to reads: every read and the retention delete go through the series key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERIES_KEY = ["provider", "asset", "kind", "granularity", "ts_event"]


def upgrade() -> None:
    with op.batch_alter_table("market_records", schema=None) as batch_op:
        batch_op.drop_index("ix_market_records_asset_kind_granularity_ts_event")
        batch_op.drop_index("ix_market_records_ts_event")
        batch_op.drop_constraint(
            "uq_market_records_provider_asset_kind_granularity_ts_event", type_="unique"
        )
        batch_op.drop_constraint("pk_market_records", type_="primary")
        batch_op.drop_column("id")
        batch_op.create_primary_key("pk_market_records", SERIES_KEY)


def downgrade() -> None:
    with op.batch_alter_table("market_records", schema=None) as batch_op:
        batch_op.drop_constraint("pk_market_records", type_="primary")
        batch_op.add_column(
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                sa.Identity(),
                nullable=False,
            )
        )
        batch_op.create_primary_key("pk_market_records", ["id"])
        batch_op.create_unique_constraint(
            "uq_market_records_provider_asset_kind_granularity_ts_event", SERIES_KEY
        )
        batch_op.create_index("ix_market_records_ts_event", ["ts_event"], unique=False)
        batch_op.create_index(
            "ix_market_records_asset_kind_granularity_ts_event",
            ["asset", "kind", "granularity", "ts_event"],
            unique=False,
        )
