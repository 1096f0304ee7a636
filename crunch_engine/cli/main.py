"""The `crunch` root command. Sub-commands import the engine lazily so --help is fast.

The engine stays headless: `crunch tui` is added by the TUI package's own CLI module,
which the ``crunch`` console script runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from crunch_engine import __version__
from crunch_engine.cli import config_cmd, db_cmd, feeds_cmd, packs_cmd, serve_cmd, worker_cmd

app = typer.Typer(
    name="crunch",
    help="Run a Crunch: live prediction competitions (predict -> score -> rank).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.add_typer(db_cmd.app, name="db", rich_help_panel="Setup")
app.add_typer(packs_cmd.app, name="packs", rich_help_panel="Configuration")
app.add_typer(config_cmd.app, name="config", rich_help_panel="Configuration")
app.add_typer(feeds_cmd.app, name="feeds", rich_help_panel="Market data")
app.add_typer(worker_cmd.app, name="worker", rich_help_panel="Run")
app.command("serve", rich_help_panel="Run")(serve_cmd.serve)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crunch-control {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Configuration comes from CRUNCH_* environment variables and .env / .local.env files."""


def run() -> None:
    app()
