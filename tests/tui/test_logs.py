"""Logs screen: merged and per-worker views, filters, follow, batching, copy, and that
worker output is never read as markup."""

from __future__ import annotations

from textual.widgets import Input

from crunch_tui.screens.logs import LogsScreen
from crunch_tui.snapshots import LogLine
from crunch_tui.widgets.ansi_log import AnsiLog
from tests.tui.conftest import SIZE, make_app, wait_for
from tests.tui.fake import MARKUP_LINE, FakeControlPlane
from tests.tui.screen_text import screen_text


async def _open_logs(pilot, app) -> tuple[LogsScreen, AnsiLog]:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: app.snapshot.loaded and len(app.logbook) >= 6)
    await pilot.press("l")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, LogsScreen)
    view = screen.log_view
    await wait_for(pilot, lambda: view.line_count >= 6)
    return screen, view


async def test_merged_view_prefixes_and_keeps_brackets_literal(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        _screen, view = await _open_logs(pilot, app)
        lines = list(view.lines)
        assert len(lines) == 6
        assert lines[0].startswith("market-data ")
        assert any(line.endswith(f"INFO {MARKUP_LINE}") for line in lines)
        assert MARKUP_LINE in screen_text(app)  # drawn as written, not styled away
        # ANSI colours survive (the predict line's "INFO" is green), escapes do not show.
        predict = next(t for t in view._styled if "cycle 42" in t.plain)
        assert "\x1b" not in predict.plain
        green = [s for s in predict.spans if s.style.color and s.style.color.number == 2]
        assert [predict.plain[s.start : s.end] for s in green] == ["INFO"]


async def test_per_worker_view_and_text_filter(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await _open_logs(pilot, app)
        screen.select_source("predict")
        await pilot.pause()
        assert screen.source == "predict"
        assert list(view.lines) == [
            "INFO cycle 42: 8 models, 8 SUCCESS",
            "WARNING model tracker-002 failed: ZeroDivisionError",
        ]
        screen.select_source("*")
        await pilot.pause()
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"watermark")
        await pilot.pause()
        assert len(view.lines) == 1 and "watermark" in view.lines[0]
        await pilot.press("escape")
        assert app.focused is view


async def test_level_filter_cycles(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await _open_logs(pilot, app)
        assert view.line_count == 6  # DEBUG and up
        await pilot.press("v")  # INFO and up
        await pilot.pause()
        assert view.line_count == 5
        await pilot.press("v")  # WARNING and up
        await pilot.pause()
        assert view.line_count == 2
        await pilot.press("v")  # ERROR
        await pilot.pause()
        assert [line.split("│ ")[1] for line in view.lines] == ["ERROR scoring slot failed"]
        assert "ERROR" in str(screen.query_one("#log-level").render())
        await pilot.press("v")  # back to everything
        await pilot.pause()
        assert view.line_count == 6


async def test_streamed_lines_arrive_in_batches_and_follow_toggles(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await _open_logs(pilot, app)
        for i in range(300):
            fake.push(LogLine(seq=100 + i, process="predict", stream="stdout", line=f"INFO n{i}"))
        await wait_for(pilot, lambda: view.line_count == 306)
        assert view.is_vertical_scroll_end  # following
        await pilot.press("f")
        assert not screen.follow and not view.auto_scroll
        assert "off" in str(screen.query_one("#log-follow").render())
        view.scroll_home(animate=False)
        await pilot.pause()
        fake.push(LogLine(seq=999, process="predict", stream="stdout", line="INFO late"))
        await wait_for(pilot, lambda: view.line_count == 307)
        assert view.scroll_y == 0  # not following: the view stays where the user put it
        await pilot.press("f")
        assert screen.follow
        await pilot.pause()
        assert view.is_vertical_scroll_end


async def test_duplicate_lines_after_reconnect_are_dropped(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        _screen, view = await _open_logs(pilot, app)
        for line in fake.log_lines:
            fake.push(line)
        fake.push(LogLine(seq=50, process="score", stream="stderr", line="ERROR fresh"))
        await wait_for(pilot, lambda: view.line_count == 7)


async def test_copy_selection_or_visible_lines(fake: FakeControlPlane):
    app = make_app(fake)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await _open_logs(pilot, app)
        screen.select_source("orchestrator")
        await pilot.pause()
        await pilot.press("c")
        assert copied == [f"INFO {MARKUP_LINE}"]
        screen.select_source("*")
        await pilot.pause()
        screen._select_all_in_widget(view)  # what a mouse drag over the log does
        await pilot.pause()
        await pilot.press("c")
        assert copied[-1].count("\n") >= 5
        assert "ERROR scoring slot failed" in copied[-1]


async def test_palette_toggles_log_follow(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"toggle follow")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LogsScreen) and not app.screen.follow)
