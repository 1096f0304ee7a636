"""Processes: every worker the server supervises, with keys to restart, stop and start
the selected one. A failed worker shows why: its exit code and last stderr lines."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from crunch_tui.screens.base import LiveScreen
from crunch_tui.snapshots import ProcessInfo, Snapshot
from crunch_tui.widgets import cells
from crunch_tui.widgets.live_table import LiveTable
from crunch_tui.widgets.status_line import StatusLine


class ProcessesScreen(LiveScreen):
    CSS_PATH = "processes.tcss"
    BINDINGS = [
        Binding("r", "process('restart')", "Restart"),
        Binding("x", "process('stop')", "Stop"),
        Binding("s", "process('start')", "Start"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._processes: dict[str, ProcessInfo] = {}

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static("Processes", classes="pane-title")
        yield LiveTable(id="processes")
        yield Static(id="process-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#processes", LiveTable).set_columns(
            [
                ("name", "name"),
                ("state", "state"),
                ("pid", "pid"),
                ("uptime", "uptime"),
                ("restarts", "restarts"),
                ("exit", "exit code"),
                ("cpu", "CPU %"),
                ("rss", "RSS"),
            ]
        )
        super().on_mount()

    def show(self, snapshot: Snapshot) -> None:
        self._processes = {p.name: p for p in snapshot.processes}
        rows = {p.name: _process_row(p) for p in snapshot.processes}
        self.query_one("#processes", LiveTable).sync(rows, sort_column="name")
        self._show_detail()

    @property
    def selected_process(self) -> str | None:
        return self.query_one("#processes", LiveTable).selected_key()

    @on(DataTable.RowHighlighted, "#processes")
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#process-detail", Static)
        process = self._processes.get(self.selected_process or "")
        if process is None:
            cells.set_text(detail, Text("no process selected", style="dim"), layout=False)
            return
        cells.set_text(detail, describe(process), layout=False)

    def action_process(self, action: str) -> None:
        name = self.selected_process
        if name is None:
            self.notify("no process selected", severity="warning")
            return
        self.crunch.request_process_action(name, action)


def describe(process: ProcessInfo) -> Text:
    """The detail panel: argv, and for a failed worker its exit code and last stderr."""
    text = Text.assemble((process.name, "bold"), "  ")
    text.append_text(cells.state_cell(process.state))
    if process.argv:
        text.append("\n" + " ".join(process.argv), style="dim")
    if process.failed or process.last_exit_code not in (None, 0):
        text.append(f"\nexited with code {process.last_exit_code}", style="bold red")
    if process.last_stderr:
        text.append("\nlast stderr:", style="red" if process.failed else "dim")
        for line in process.last_stderr[-12:]:
            text.append("\n  ")
            text.append_text(Text.from_ansi(line))
    return text


def _process_row(p: ProcessInfo) -> tuple[object, ...]:
    exit_code = cells.plain(p.last_exit_code)
    if p.last_exit_code not in (None, 0):
        exit_code.stylize("bold red")
    return (
        Text(p.name),
        cells.state_cell(p.state),
        cells.plain(p.pid),
        cells.duration(p.uptime_seconds if p.state == "running" else None),
        cells.count(p.restarts),
        exit_code,
        cells.number(p.cpu_percent, 1),
        cells.size(p.rss_bytes),
    )
