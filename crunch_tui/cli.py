"""The `crunch` console script: the engine's commands plus `crunch tui`.

The command lives here, not in the engine, so ``crunch_engine`` never imports Textual.
"""

from __future__ import annotations

from typing import Annotated

import typer

from crunch_engine.cli.main import app


@app.command("tui", rich_help_panel="Run")
def tui(
    attach: Annotated[
        str | None,
        typer.Option(
            "--attach",
            metavar="URL",
            help="Monitor a running `crunch serve` at URL instead of starting one.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="CRUNCH_API_KEY",
            help="The server's API key (attach mode; needed for process control).",
        ),
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", min=0.2, help="Seconds between refreshes.")
    ] = 1.0,
) -> None:
    """The terminal control center: starts the engine (or attaches to one) and monitors it."""
    from crunch_tui.app import run_tui  # Textual only when the TUI runs

    raise typer.Exit(run_tui(attach=attach, api_key=api_key, poll_interval=poll))


def run() -> None:
    app()
