"""What every command shares: consoles, settings loading and error reporting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from crunch_engine.errors import CrunchError

if TYPE_CHECKING:
    from crunch_engine.settings import Settings

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` (never parsed as markup) and exit with ``code``."""
    err_console.print("[bold red]error:[/] ", end="")
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn engine errors into a clear message and their exit code (2 for bad config)."""
    try:
        yield
    except CrunchError as exc:
        fail(str(exc), exc.exit_code)


def load_settings_or_exit(**overrides: object) -> Settings:
    """Validated settings; command-line options (when given) override the environment."""
    from crunch_engine.settings import load_settings

    clean = {key: value for key, value in overrides.items() if value is not None}
    with reported_errors():
        return load_settings(**clean)
