"""Logs: per worker or merged (with a coloured prefix), follow toggle, text and level
filters, mouse selection and copy. Lines come from the app's ring buffers and are written
to the widget in batches every 100 ms; ANSI colours are kept, markup never interpreted."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from crunch_tui.logbook import LEVELS, Entry, prefixed
from crunch_tui.screens.base import LiveScreen
from crunch_tui.snapshots import Snapshot
from crunch_tui.widgets.ansi_log import AnsiLog
from crunch_tui.widgets.status_line import StatusLine

ALL = "*"
FLUSH_SECONDS = 0.25
"""Batched repaints: 4 frames a second keeps a fast stream readable while costing a
fraction of the CPU of 10 (measured by bench/tui.py on the Logs screen)."""
RERENDER_LIMIT = 2000


class LogsScreen(LiveScreen):
    CSS_PATH = "logs.tcss"
    AUTO_FOCUS = "#log-view"
    BINDINGS = [
        Binding("f", "toggle_follow", "Follow"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("v", "cycle_level", "Level"),
        Binding("c", "copy", "Copy"),
        Binding("escape", "leave_filter", "Back to log", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.source: str = ALL
        self.min_level = 0
        self.needle = ""
        self.follow = True
        self._drawn_index = 0
        self._sources: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Horizontal(id="log-bar"):
            yield Input(placeholder="filter text  ( / )", id="log-filter")
            yield Static(id="log-level")
            yield Static(id="log-follow")
        with Horizontal(id="log-body"):
            yield OptionList(Option("all (merged)", id=ALL), id="log-sources")
            yield AnsiLog(id="log-view", max_lines=RERENDER_LIMIT * 2)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = self.crunch.blink
        self.query_one(OptionList).highlighted = 0
        self._show_controls()
        self.set_interval(FLUSH_SECONDS, self.flush)
        super().on_mount()
        self.rerender()

    def show(self, snapshot: Snapshot) -> None:
        names = set(self.crunch.logbook.processes) | {p.name for p in snapshot.processes}
        sources = tuple(sorted(names))
        if sources != self._sources:
            self._sources = sources
            options = self.query_one(OptionList)
            highlighted = options.highlighted
            options.clear_options()
            options.add_options(
                [Option("all (merged)", id=ALL), *(Option(Text(n), id=n) for n in sources)]
            )
            options.highlighted = highlighted

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.flush()

    @property
    def log_view(self) -> AnsiLog:
        return self.query_one("#log-view", AnsiLog)

    def _format(self, entries: list[Entry]) -> list[str]:
        needle = self.needle.lower()
        source = None if self.source == ALL else self.source
        picked = [e for e in entries if e.matches(source, self.min_level, needle)]
        if self.source != ALL:
            return [e.line.line for e in picked]
        processes = self.crunch.logbook.processes
        return [prefixed(e, processes) for e in picked]

    def flush(self) -> None:
        """Write what arrived since the last batch (only while this view is visible)."""
        book = self.crunch.logbook
        if not self.is_current or book.index == self._drawn_index:
            return
        fresh = book.since(self._drawn_index)
        self._drawn_index = book.index
        lines = self._format(fresh)
        if lines:
            self.log_view.write_lines(lines, scroll_end=self.follow)

    def rerender(self) -> None:
        """Redraw from the ring buffer after the source or a filter changed."""
        book = self.crunch.logbook
        source = None if self.source == ALL else self.source
        entries = book.select(source, self.min_level, self.needle, RERENDER_LIMIT)
        self._drawn_index = book.index
        view = self.log_view
        view.clear()
        view.write_lines(self._format(entries), scroll_end=self.follow)

    def _show_controls(self) -> None:
        level = Text.assemble("level ≥ ", (LEVELS[self.min_level], "bold"), " (v)")
        follow = Text.assemble(
            "follow ", ("on" if self.follow else "off", "bold green" if self.follow else "dim")
        )
        follow.append(" (f)")
        self.query_one("#log-level", Static).update(level)
        self.query_one("#log-follow", Static).update(follow)

    @on(OptionList.OptionHighlighted, "#log-sources")
    def _source_changed(self, event: OptionList.OptionHighlighted) -> None:
        source = event.option.id or ALL
        if source != self.source:
            self.source = source
            self.rerender()

    @on(Input.Changed, "#log-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.needle = event.value
        self.rerender()

    def select_source(self, name: str) -> None:
        options = self.query_one(OptionList)
        options.highlighted = options.get_option_index(name)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.log_view.auto_scroll = self.follow
        if self.follow:
            self.log_view.scroll_end(animate=False)
        self._show_controls()

    def action_cycle_level(self) -> None:
        self.min_level = (self.min_level + 1) % len(LEVELS)
        self._show_controls()
        self.rerender()

    def action_focus_filter(self) -> None:
        self.query_one(Input).focus()

    def action_leave_filter(self) -> None:
        self.log_view.focus()

    def action_copy(self) -> None:
        """Copy the mouse selection, or every line in view when nothing is selected."""
        selected = self.get_selected_text()
        text = selected or self.log_view.plain_text
        self.app.copy_to_clipboard(text)
        count = len(text.splitlines())
        self.notify(f"copied {count} line{'s' if count != 1 else ''}", timeout=2)
