"""`crunch serve`: workers + report/control API + web UI, headless."""

from __future__ import annotations

from typing import Annotated

import typer

from crunch_engine.cli.common import load_settings_or_exit, reported_errors


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on [env: CRUNCH_API_HOST].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on [env: CRUNCH_API_PORT].")
    ] = None,
    pack: Annotated[str | None, typer.Option(help="Pack name or path [env: CRUNCH_PACK].")] = None,
    workers: Annotated[
        bool, typer.Option("--workers/--no-workers", help="Run the engine workers too.")
    ] = True,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Bring the schema to head first.")
    ] = True,
) -> None:
    """Run the engine headless: workers, the HTTP API and the web UI (Ctrl-C stops all)."""
    settings = load_settings_or_exit(api_host=host, api_port=port, pack=pack)
    from crunch_engine.api.serve import serve as run_serve
    from crunch_engine.workers.runtime import configure_logging, run_async

    configure_logging(settings.log_level)
    with reported_errors():
        code = run_async(
            run_serve(
                settings,
                host=settings.api_host,
                port=settings.api_port,
                workers=workers,
                migrate=migrate,
            )
        )
    raise typer.Exit(code)
