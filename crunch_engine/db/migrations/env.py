"""Alembic environment: runs on a connection handed over by ``crunch_engine.db.migrate``."""

from __future__ import annotations

from alembic import context

from crunch_engine.db.tables import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through `crunch db upgrade` (crunch_engine.db.migrate), "
            "which provides the connection"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
