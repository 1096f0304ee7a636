"""The one-line status bar on every screen: where the engine is and how fresh the data is."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from crunch_tui.messages import Connection
from crunch_tui.snapshots import Snapshot

_STYLES = {
    "starting": ("◌", "yellow"),
    "connecting": ("◌", "yellow"),
    "connected": ("●", "green"),
    "unreachable": ("○", "red"),
    "stopping": ("◌", "yellow"),
    "failed": ("✖", "bold red"),
}


class StatusLine(Static):
    """Watches the app's ``connection`` and ``snapshot``; renders plain Text (no markup)."""

    _last: Text | None = None

    def on_mount(self) -> None:
        self.watch(self.app, "connection", self._changed, init=False)
        self.watch(self.app, "snapshot", self._changed, init=False)
        self._changed()

    def _changed(self, _value: object = None) -> None:
        connection: Connection = self.app.connection  # type: ignore[attr-defined]
        snapshot: Snapshot = self.app.snapshot  # type: ignore[attr-defined]
        text = render_status(connection, snapshot)
        if text != self._last:  # one line, fixed size: a repaint, never a layout pass
            self._last = text
            self.update(text, layout=False)


def render_status(connection: Connection, snapshot: Snapshot) -> Text:
    icon, style = _STYLES.get(connection.kind, ("?", "white"))
    where = "local engine" if connection.local else "attached"
    text = Text.assemble((f" {icon} ", style), (connection.kind, style), f"  {where} ")
    text.append(connection.url, style="bold")
    info = snapshot.info
    if info:
        text.append(f"  ·  {info.get('crunch_id', '?')} · pack {info.get('pack', '?')}")
        text.append(f" · {info.get('database', '?')} · feed {info.get('feed_provider', '?')}")
    if snapshot.fetched_at is not None:
        text.append(f"  ·  updated {snapshot.fetched_at:%H:%M:%S}", style="dim")
    if connection.detail:
        text.append(f"  ·  {connection.detail}", style=style)
    if snapshot.problems and connection.kind == "connected":
        text.append(f"  ·  {snapshot.problems[0]}", style="yellow")
    return text
