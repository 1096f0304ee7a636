"""`crunch db`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from crunch_engine.cli.common import console, fail, load_settings_or_exit, reported_errors

app = typer.Typer(help="Database schema (SQLite file by default, or CRUNCH_DATABASE_URL).")

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides CRUNCH_DATABASE_URL.", show_default=False),
]


@app.command("upgrade")
def upgrade(database_url: DatabaseUrl = None, revision: str = "head") -> None:
    """Bring the database to the newest schema (creates the SQLite file when missing)."""
    import asyncio

    from crunch_engine.db.migrate import upgrade_database

    settings = load_settings_or_exit(database_url=database_url)
    if not settings.database_url:
        settings.ensure_data_dir()
    with reported_errors():
        try:
            before, after = asyncio.run(upgrade_database(settings.effective_database_url, revision))
        except OSError as exc:
            fail(f"cannot reach {settings.redacted_database_url}: {exc}", 1)
    if before == after:
        console.print(f"{settings.redacted_database_url}: already at revision {after}")
    else:
        console.print(f"{settings.redacted_database_url}: {before or 'empty'} -> {after}")


@app.command("current")
def current(database_url: DatabaseUrl = None) -> None:
    """Print the database's schema revision and the newest one available."""
    import asyncio

    from crunch_engine.db.engine import create_engine
    from crunch_engine.db.migrate import current_revision, head_revision

    settings = load_settings_or_exit(database_url=database_url)

    async def read() -> str | None:
        engine = create_engine(settings.effective_database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    try:
        revision = asyncio.run(read())
    except OSError as exc:
        fail(f"cannot reach {settings.redacted_database_url}: {exc}", 1)
    console.print(f"current: {revision or 'none'}  head: {head_revision()}")
