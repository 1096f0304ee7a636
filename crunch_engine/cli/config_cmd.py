"""`crunch config check`: resolve everything a worker would, and say what is wrong."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from crunch_engine.cli.common import console, fail, load_settings_or_exit, reported_errors

app = typer.Typer(help="Inspect and validate the configuration.", no_args_is_help=True)


@app.command("check")
def check(
    pack: Annotated[str | None, typer.Option(help="Pack name or path (CRUNCH_PACK).")] = None,
    spec: Annotated[
        Path | None, typer.Option(help="spec.json merged over the pack (CRUNCH_SPEC).")
    ] = None,
    callables_file: Annotated[
        Path | None, typer.Option(help="SLOT=path lines (CRUNCH_CALLABLES_FILE).")
    ] = None,
) -> None:
    """Resolve pack + spec + callables + settings; exit 0 when all is good, 2 otherwise."""
    from rich.table import Table

    from crunch_engine.competition import choose_slots, make_node_importable
    from crunch_engine.packs.loader import load_pack_with_spec
    from crunch_engine.slots.resolver import SlotResolutionError, resolve_slot

    settings = load_settings_or_exit(pack=pack, spec=spec, callables_file=callables_file)
    with reported_errors():
        manifest, spec_model = load_pack_with_spec(
            settings.pack, settings.spec, settings.schedule_file
        )
        choices = choose_slots(manifest, spec_model, settings, os.environ)
    make_node_importable()
    table = Table(title=f"Slots ({manifest.id})")
    for column in ("slot", "callable", "source", "status"):
        table.add_column(column, overflow="fold")
    failures: list[SlotResolutionError] = []
    for slot, choice in choices.items():
        try:
            resolved = resolve_slot(slot, choice.path, choice.source)
            status = "[green]ok[/]" + (" (async)" if resolved.is_async else "")
        except SlotResolutionError as exc:
            failures.append(exc)
            status = f"[red]{_escape(exc.reason)}[/]"
        table.add_row(slot.value, _escape(choice.path), _escape(choice.source), status)
    console.print(table)
    console.print(f"database: {settings.redacted_database_url}")
    console.print(f"data dir: {settings.resolved_data_dir}")
    configs = ", ".join(
        f"{c.scope_key} every {c.schedule.every_seconds}s" for c in manifest.active_configs
    )
    schedule_note = f" (from {settings.schedule_file})" if settings.schedule_file.is_file() else ""
    console.print(f"schedules: {configs or 'none active'}{schedule_note}")
    if failures:
        lines = [f"{f.slot}={f.path} (from {f.source}): {f.reason}" for f in failures]
        fail(f"{len(failures)} slot(s) failed:\n  " + "\n  ".join(lines), 2)
    console.print("[bold green]configuration OK[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
