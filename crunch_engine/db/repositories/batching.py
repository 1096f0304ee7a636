"""Dialect-aware bulk inserts and upserts, chunked under the bind-parameter limits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

# asyncpg allows 32,767 bind parameters per statement; SQLite >= 3.32 allows 32,766.
MAX_BIND_PARAMETERS = 30_000


def chunks(rows: Sequence[Mapping[str, Any]], width: int) -> Iterator[Sequence[Mapping[str, Any]]]:
    size = max(1, MAX_BIND_PARAMETERS // max(1, width))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


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

    Runs inside the caller's transaction: the caller commits once for the whole batch.
    """
    if not rows:
        return
    width = len(rows[0])
    for chunk in chunks(rows, width):
        statement = insert_for(session, table).values(list(chunk))
        if update_columns:
            statement = statement.on_conflict_do_update(
                index_elements=list(conflict_columns),
                set_={name: statement.excluded[name] for name in update_columns},
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(conflict_columns))
        await session.execute(statement)
