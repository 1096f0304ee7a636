"""`crunch packs`: the built-in packs and what they wire."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from crunch_engine.cli.common import console, reported_errors

app = typer.Typer(help="Packs: pre-wired slots, schedules and scoring.", no_args_is_help=True)


@app.command("list")
def list_packs(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the built-in packs."""
    from rich.table import Table

    from crunch_engine.packs.loader import list_packs as load_all

    with reported_errors():
        packs = load_all()
    if as_json:
        rows = [
            {"id": p.id, "description": p.description, "every_seconds": p.every_seconds}
            for p in packs
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Packs")
    table.add_column("id", style="bold cyan")
    table.add_column("every (s)", justify="right")
    table.add_column("scopes", justify="right")
    table.add_column("description")
    for pack in packs:
        table.add_row(
            pack.id,
            str(pack.every_seconds),
            str(len(pack.scheduled_prediction_configs)),
            pack.description,
        )
    console.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A pack name, or a path to a pack.json.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the validated manifest.")] = False,
) -> None:
    """Show a pack's slots, schedules and scoring."""
    from rich.table import Table

    from crunch_engine.packs.loader import load_pack

    with reported_errors():
        pack = load_pack(name)
    if as_json:
        typer.echo(pack.model_dump_json(indent=2))
        return
    console.print(f"[bold]{pack.id}[/]: {pack.description}")
    console.print(f"checkpoint interval: {pack.checkpoint_interval_seconds} s")
    slots = Table(title="Slots")
    slots.add_column("slot", style="bold")
    slots.add_column("callable")
    for slot, path in pack.callables.items():
        slots.add_row(slot.value, path)
    console.print(slots)
    schedules = Table(title="Scheduled prediction configs")
    for column in ("scope_key", "every (s)", "active", "order", "scope template"):
        schedules.add_column(column)
    for config in pack.scheduled_prediction_configs:
        schedules.add_row(
            config.scope_key,
            str(config.schedule.every_seconds),
            "yes" if config.active else "no",
            str(config.order),
            json.dumps(config.scope_template),
        )
    console.print(schedules)
    scoring = pack.scoring
    windows = ", ".join(f"{name} {seconds}s" for name, seconds in scoring.windows.items())
    console.print(f"windows: {windows}; ranked by {scoring.rank_by} ({scoring.direction})")
    for board in scoring.leaderboards:
        console.print(f"leaderboard {board.key}: {', '.join(board.scope_keys)}")
