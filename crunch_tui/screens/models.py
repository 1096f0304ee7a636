"""Models: one row per model (state, deployment, latency, status counts, failures) and a
detail panel with the selected model's recent predictions and scores."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Static

from crunch_tui.control import ControlError
from crunch_tui.screens.base import LiveScreen
from crunch_tui.snapshots import ModelHealth, Prediction, Snapshot
from crunch_tui.widgets import cells
from crunch_tui.widgets.live_table import LiveTable
from crunch_tui.widgets.status_line import StatusLine

STATUSES = ("SUCCESS", "FAILED", "TIMEOUT", "ABSENT")
PREDICTIONS_REFRESH_SECONDS = 5.0


class ModelsScreen(LiveScreen):
    CSS_PATH = "models.tcss"

    def __init__(self) -> None:
        super().__init__()
        self._selected: str | None = None
        self._health: dict[str, ModelHealth] = {}

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static("Models", id="models-title", classes="pane-title")
        yield LiveTable(id="models")
        with Vertical(id="model-detail"):
            yield Static(id="model-info")
            yield LiveTable(id="predictions", cursor_type="none")
        yield Footer()

    def on_mount(self) -> None:
        columns = [
            ("model", "model"),
            ("state", "state"),
            ("deployment", "deployment"),
            ("p50", "p50 ms"),
            ("p95", "p95 ms"),
        ]
        columns += [(s.lower(), s.lower()) for s in STATUSES]
        columns += [("failures", "consec. fail"), ("restarts", "restarts"), ("error", "last error")]
        self.query_one("#models", LiveTable).set_columns(columns)
        self.query_one("#predictions", LiveTable).set_columns(
            [
                ("performed", "performed"),
                ("scope", "scope"),
                ("status", "status"),
                ("score", "score"),
                ("scored", "scored"),
                ("reason", "reason"),
            ]
        )
        self.set_interval(PREDICTIONS_REFRESH_SECONDS, self._refresh_predictions)
        super().on_mount()

    def show(self, snapshot: Snapshot) -> None:
        self._health = {h.model_id: h for h in snapshot.health}
        rows = {h.model_id: _model_row(h) for h in snapshot.health}
        table = self.query_one("#models", LiveTable)
        table.sync(rows, sort_column="model")
        title = f"Models · {len(rows)} · {snapshot.summary.running} running"
        title += f" · {snapshot.summary.failing} failing · {snapshot.summary.absent} absent"
        cells.set_text(self.query_one("#models-title", Static), Text(title), layout=False)
        if self._selected is None or self._selected not in rows:
            self._select(table.selected_key())
        else:
            self._show_info()

    @on(DataTable.RowHighlighted, "#models")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._select(event.row_key.value if event.row_key else None)

    def _select(self, model_id: str | None) -> None:
        changed = model_id != self._selected
        self._selected = model_id
        self._show_info()
        if changed:
            self.query_one("#predictions", LiveTable).sync({})
            self._refresh_predictions()

    @property
    def selected_model(self) -> str | None:
        return self._selected

    def _show_info(self) -> None:
        health = self._health.get(self._selected or "")
        info = self.query_one("#model-info", Static)
        if health is None:
            cells.set_text(info, Text("no model selected", style="dim"))
            return
        text = Text.assemble((health.model_name, "bold"), f"  ({health.model_id})  ")
        text.append_text(cells.state_cell(health.state))
        text.append(f"  deployment {health.deployment_id or '—'}  restarts {health.restarts}")
        if health.last_error:
            when = f" at {health.last_error_at:%H:%M:%S}" if health.last_error_at else ""
            text.append(f"\nlast error{when}: ", style="red")
            text.append(health.last_error)
        cells.set_text(info, text)

    def _refresh_predictions(self) -> None:
        if self._selected is not None and self.is_current:
            self._load_predictions(self._selected)

    @work(exclusive=True, group="predictions", exit_on_error=False)
    async def _load_predictions(self, model_id: str) -> None:
        try:
            predictions = await self.crunch.control.predictions(model_id, limit=20)
        except ControlError as exc:
            self.query_one("#model-info", Static).update(Text(f"predictions: {exc}", "red"))
            return
        if model_id == self._selected:
            rows = {p.id or str(i): _prediction_row(p) for i, p in enumerate(predictions)}
            self.query_one("#predictions", LiveTable).sync(rows)


def _model_row(health: ModelHealth) -> tuple[object, ...]:
    counts = [cells.count(health.counts.get(s, 0)) for s in STATUSES]
    failures = cells.count(health.consecutive_failures)
    if health.consecutive_failures:
        failures.stylize("bold red")
    error = Text((health.last_error or "")[:80], style="red" if health.last_error else "")
    return (
        Text(health.model_name),
        cells.state_cell(health.state),
        cells.plain(health.deployment_id),
        cells.number(health.latency_p50_ms, 1),
        cells.number(health.latency_p95_ms, 1),
        *counts,
        failures,
        cells.count(health.restarts),
        error,
    )


def _prediction_row(p: Prediction) -> tuple[object, ...]:
    performed = f"{p.performed_at:%H:%M:%S}" if p.performed_at else None
    scored = f"{p.scored_at:%H:%M:%S}" if p.scored_at else None
    status_style = "green" if p.status == "SUCCESS" else "yellow"
    return (
        cells.plain(performed),
        cells.plain(p.scope_key),
        Text(p.status, style=status_style),
        cells.number(p.score_value),
        cells.plain(scored),
        Text((p.score_failed_reason or "")[:60], style="dim"),
    )
