"""The two widgets the live views rest on: the in-place DataTable and the ANSI log."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from crunch_tui.widgets.ansi_log import AnsiLog
from crunch_tui.widgets.live_table import LiveTable
from tests.tui.screen_text import screen_text


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LiveTable(id="t")


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield AnsiLog(id="log", max_lines=50)


async def test_live_table_diffs_rows_and_cells():
    app = TableApp()
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(LiveTable)
        table.set_columns([("rank", "#"), ("name", "name"), ("score", "score")])
        rows = {"a": (1, Text("alpha"), "0.1"), "b": (2, Text("beta"), "0.2")}
        assert table.sync(rows, sort_column="rank") == 6
        assert table.sync(rows, sort_column="rank") == 0  # nothing changed, nothing touched
        table.move_cursor(row=1)
        assert table.selected_key() == "b"
        changed = {
            "b": (1, Text("beta"), "0.05"),
            "a": (2, Text("alpha"), "0.1"),
            "c": (3, Text("c"), "1"),
        }
        assert table.sync(changed, sort_column="rank") == 3 + 3  # three cells, one new row
        await pilot.pause()
        assert [r.key.value for r in table.ordered_rows] == ["b", "a", "c"]
        assert table.selected_key() == "b"  # the cursor follows its row across the re-sort
        assert table.sync({"c": (1, Text("c"), "1")}, sort_column="rank") >= 2
        assert table.row_ids == ("c",) and table.row_count == 1
        table.set_columns([("rank", "#"), ("name", "name"), ("score", "score")])
        assert table.row_count == 1  # same columns: kept
        table.set_columns([("rank", "#")])
        assert table.row_count == 0 and len(table.columns) == 1


async def test_ansi_log_keeps_the_newest_lines_visible_past_max_lines():
    app = LogApp()
    async with app.run_test(size=(80, 20)) as pilot:
        log = app.query_one(AnsiLog)
        for batch in range(20):
            log.write_lines([f"\x1b[33mline {batch * 10 + i}\x1b[0m [b]x[/b]" for i in range(10)])
            await pilot.pause()
        assert log.line_count == 50
        assert log.lines[-1] == "line 199 [b]x[/b]"
        text = screen_text(app)
        assert "line 199 [b]x[/b]" in text and "line 149" not in text
        assert log.is_vertical_scroll_end
        log.clear()
        await pilot.pause()
        assert log.line_count == 0 and "line 199" not in screen_text(app)


async def test_live_table_widens_a_column_when_a_cell_grows():
    app = TableApp()
    async with app.run_test(size=(80, 20)) as pilot:
        table = app.query_one(LiveTable)
        table.set_columns([("n", "n")])
        table.sync({"a": (Text("99"),)})
        await pilot.pause()
        narrow = table.columns["n"].content_width
        table.sync({"a": (Text("1,000,000"),)})
        await pilot.pause()
        assert table.columns["n"].content_width > narrow
        assert "1,000,000" in screen_text(app)
