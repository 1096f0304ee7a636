"""Local mode, before the server answers: "starting engine..." and the child's own
output, so a start that fails explains itself (a bad setting, a busy port, a traceback)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, Static

from crunch_tui.engine import ChildState
from crunch_tui.screens.base import LiveScreen
from crunch_tui.snapshots import LogLine, Snapshot
from crunch_tui.widgets import cells
from crunch_tui.widgets.ansi_log import AnsiLog
from crunch_tui.widgets.status_line import StatusLine


class StartingScreen(LiveScreen):
    CSS_PATH = "starting.tcss"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._failed: str | None = None
        self._last_seq = 0

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static(id="starting-title")
        yield Static(id="starting-child")
        yield AnsiLog(id="starting-log", max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        self._title()
        super().on_mount()

    def show(self, snapshot: Snapshot) -> None:
        """Nothing to show from snapshots: the engine is not answering yet."""

    def _title(self) -> None:
        title = self.query_one("#starting-title", Static)
        if self._failed:
            title.update(Text(f"✖ the engine failed to start: {self._failed}", "bold red"))
        else:
            title.update(Text(f"◌ starting engine… (crunch serve on {self._url})", "bold yellow"))

    def child(self, state: ChildState, lines: Sequence[LogLine]) -> None:
        """Called by the app while waiting: the child's state and its output so far."""
        text = Text(f"child: {state.state}", style="dim")
        if state.pid:
            text.append(f"  pid {state.pid}", style="dim")
        if state.exit_code is not None:
            text.append(f"  last exit code {state.exit_code}", style="red")
        cells.set_text(self.query_one("#starting-child", Static), text)
        fresh = [line for line in lines if line.seq > self._last_seq]
        if fresh:
            self._last_seq = fresh[-1].seq
            self.query_one(AnsiLog).write_lines([line.line for line in fresh])

    def failed(self, reason: str) -> None:
        self._failed = reason
        self._title()
