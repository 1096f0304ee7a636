"""Cell formatting shared by the tables (plain Text, never markup)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

STATE_STYLES = {
    "running": "green",
    "RUNNING": "green",
    "starting": "yellow",
    "stopping": "yellow",
    "RECOVERING": "yellow",
    "backoff": "bold yellow",
    "exited": "red",
    "fatal": "bold red",
    "stopped": "dim",
    "STOPPED": "dim",
}


def state_cell(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def number(value: float | None, digits: int = 4) -> Text:
    if value is None:
        return Text("—", style="dim", justify="right")
    return Text(f"{value:.{digits}f}", justify="right")


def count(value: int | None) -> Text:
    if value is None:
        return Text("—", style="dim", justify="right")
    return Text(f"{value:,}", justify="right")


def rank_change(change: int | None) -> Text:
    """▲ moved up, ▼ moved down, ● new on the board."""
    if change is None:
        return Text("new", style="bold cyan", justify="right")
    if change > 0:
        return Text(f"▲{change}", style="bold green", justify="right")
    if change < 0:
        return Text(f"▼{-change}", style="bold red", justify="right")
    return Text("·", style="dim", justify="right")


def duration(seconds: float | None) -> Text:
    if seconds is None:
        return Text("—", style="dim", justify="right")
    total = int(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        label = f"{days}d{hours:02d}h"
    elif hours:
        label = f"{hours}h{minutes:02d}m"
    else:
        label = f"{minutes}m{secs:02d}s"
    return Text(label, justify="right")


def size(value: int | None) -> Text:
    if value is None:
        return Text("—", style="dim", justify="right")
    return Text(f"{value / 1_048_576:,.1f} MiB", justify="right")


def plain(value: object) -> Text:
    return Text("—" if value is None else str(value), style="dim" if value is None else "")


def set_text(widget: Static, text: Text, *, layout: bool = True) -> None:
    """Update a Static only when its text changed: an update may cost a layout pass."""
    if widget.content != text:
        widget.update(text, layout=layout)
