"""Dialect-aware bulk upserts: one statement, compiled once, executed for every row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession, table: Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the session's backend."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {dialect!r}")


async def upsert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict_columns: Sequence[str],
    update_columns: Sequence[str] | None,
) -> None:
    """Insert ``rows``; on a conflict update ``update_columns`` (or do nothing when None).

    One statement compiled once and executed for all rows (the driver batches them),
    inside the caller's transaction: the caller commits once for the whole batch.
    """
    if not rows:
        return
    statement = insert_for(session, table)
    if update_columns:
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict_columns),
            set_={name: statement.excluded[name] for name in update_columns},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict_columns))
    await session.execute(statement, list(rows))
