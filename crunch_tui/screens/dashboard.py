"""Dashboard: the live leaderboard, the feed tape, model health and the process list."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from crunch_tui.screens.base import LiveScreen
from crunch_tui.snapshots import HealthSummary, Snapshot
from crunch_tui.widgets import cells
from crunch_tui.widgets.feed_tape import FeedTapeView
from crunch_tui.widgets.live_table import LiveTable
from crunch_tui.widgets.status_line import StatusLine


class DashboardScreen(LiveScreen):
    CSS_PATH = "dashboard.tcss"

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Horizontal(id="dash-body"):
            with Vertical(id="board-pane"):
                yield Static("Leaderboard", id="board-title", classes="pane-title")
                yield Static("waiting for the first leaderboard…", id="board-empty")
                yield LiveTable(id="leaderboard")
            with Vertical(id="side-pane"):
                yield Static("Models", classes="pane-title")
                yield Static(id="health-summary")
                yield Static(id="health-failing")
                yield Static("Feed tape", classes="pane-title")
                yield FeedTapeView(id="feed-tape")
                yield Static("Processes", classes="pane-title")
                yield LiveTable(id="dash-processes", cursor_type="none", zebra_stripes=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#dash-processes", LiveTable).set_columns(
            [("name", "name"), ("state", "state"), ("pid", "pid"), ("restarts", "restarts")]
        )
        super().on_mount()

    def show(self, snapshot: Snapshot) -> None:
        self._show_leaderboard(snapshot)
        cells.set_text(self.query_one("#health-summary", Static), _summary(snapshot.summary))
        cells.set_text(self.query_one("#health-failing", Static), _failing(snapshot))
        self.query_one(FeedTapeView).show(snapshot.feeds)
        rows = {
            p.name: (
                cells.plain(p.name),
                cells.state_cell(p.state),
                cells.plain(p.pid),
                cells.count(p.restarts),
            )
            for p in snapshot.processes
        }
        self.query_one("#dash-processes", LiveTable).sync(rows, sort_column="name")

    def _show_leaderboard(self, snapshot: Snapshot) -> None:
        table = self.query_one("#leaderboard", LiveTable)
        windows = snapshot.windows
        columns = [("rank", "#"), ("change", "Δ"), ("model", "model"), ("cruncher", "cruncher")]
        columns += [(f"score_{w}", w) for w in windows]
        columns += [(f"count_{w}", f"n {w}") for w in windows]
        table.set_columns(columns)
        rows = {}
        for row in snapshot.leaderboard:
            scores = [cells.number(row.scores.get(w)) for w in windows]
            counts = [cells.count(row.counts.get(w)) for w in windows]
            moved = "bold" if row.rank_change else ""
            rows[row.model_id] = (
                row.rank,
                cells.rank_change(row.rank_change),
                Text(row.model_name, style=moved),
                cells.plain(row.cruncher_name),
                *scores,
                *counts,
            )
        table.sync(rows, sort_column="rank")
        key = snapshot.info.get("leaderboards") or []
        title = f"Leaderboard · {key[0]}" if key else "Leaderboard"
        title_text = Text(f"{title} · {len(rows)} models")
        cells.set_text(self.query_one("#board-title", Static), title_text, layout=False)
        self.query_one("#board-empty", Static).display = not rows


def _failing(snapshot: Snapshot, limit: int = 4) -> Text:
    """The failing models first, with their last error, so trouble is visible at a glance."""
    failing = [h for h in snapshot.health if h.condition == "failing"]
    failing.sort(key=lambda h: -h.consecutive_failures)
    text = Text()
    for health in failing[:limit]:
        if text:
            text.append("\n")
        text.append(f"✖ {health.model_name}", style="red")
        text.append(f" {health.consecutive_failures} in a row: ", style="dim")
        text.append((health.last_error or "")[:60], style="dim")
    if len(failing) > limit:
        text.append(f"\n… {len(failing) - limit} more (m: Models)", style="dim")
    return text


def _summary(summary: HealthSummary) -> Text:
    return Text.assemble(
        ("● ", "green"),
        f"{summary.running} running   ",
        ("● ", "red" if summary.failing else "dim"),
        f"{summary.failing} failing   ",
        ("● ", "yellow" if summary.absent else "dim"),
        f"{summary.absent} absent",
    )
