"""Pilot tests of the Dashboard, Models and Processes screens, mode keys, help and the
command palette, against the fake control plane."""

from __future__ import annotations

import dataclasses

from textual.widgets import Static

from crunch_tui.screens.dashboard import DashboardScreen
from crunch_tui.screens.help import HelpScreen
from crunch_tui.screens.logs import LogsScreen
from crunch_tui.screens.models import ModelsScreen
from crunch_tui.screens.processes import ProcessesScreen
from crunch_tui.widgets.live_table import LiveTable
from tests.tui.conftest import SIZE, make_app, wait_for
from tests.tui.fake import FakeControlPlane
from tests.tui.screen_text import screen_text


def _text(app, selector: str) -> str:  # type: ignore[no-untyped-def]
    widget = app.screen.query_one(selector, Static)
    return str(widget.render())


async def test_dashboard_shows_leaderboard_health_feed_and_processes(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        assert isinstance(app.screen, DashboardScreen)
        board = app.screen.query_one("#leaderboard", LiveTable)
        assert board.row_ids == tuple(f"model-{i:03d}" for i in range(6))
        labels = [str(c.label) for c in board.columns.values()]
        assert labels[:4] == ["#", "Δ", "model", "cruncher"]
        assert {"recent", "steady", "anchor", "n recent"} <= set(labels)
        assert str(board.get_cell("model-001", "change")) == "▲2"
        assert str(board.get_cell("model-002", "change")) == "▼1"
        assert str(board.get_cell("model-004", "change")) == "new"
        assert "4 running" in _text(app, "#health-summary")
        assert "1 failing" in _text(app, "#health-summary")
        assert "1 absent" in _text(app, "#health-summary")
        screen = screen_text(app)
        assert "BTC  replay candle 5s" in screen
        assert "Leaderboard · overall · 6 models" in screen
        processes = app.screen.query_one("#dash-processes", LiveTable)
        assert processes.row_ids == ("market-data", "orchestrator", "predict", "score")


async def test_mode_keys_switch_views(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        expected = {"m": ModelsScreen, "l": LogsScreen, "p": ProcessesScreen, "d": DashboardScreen}
        for key, screen_type in expected.items():
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen_type), key
        assert app.current_mode == "dashboard"


async def test_tables_update_in_place(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        board = app.screen.query_one("#leaderboard", LiveTable)
        serial = app.snapshot.serial
        await wait_for(pilot, lambda: app.snapshot.serial > serial)
        assert board.updates == 0  # identical data: no cell touched

        rows = fake.board
        swapped = [
            dataclasses.replace(rows[1], rank=1, rank_change=1),
            dataclasses.replace(rows[0], rank=2, rank_change=-1),
            *rows[2:5],  # model-005 leaves the board
            dataclasses.replace(rows[5], model_id="model-new", model_name="newcomer", rank=6),
        ]
        fake.board = swapped
        await wait_for(pilot, lambda: "model-new" in board.row_ids)
        assert board.row_ids == (
            "model-001",
            "model-000",
            "model-002",
            "model-003",
            "model-004",
            "model-new",
        )
        assert [r.key.value for r in board.ordered_rows] == list(board.row_ids)
        assert board.row_count == 6
        assert str(board.get_cell("model-000", "change")) == "▼1"


async def test_hundred_models_identical_poll_touches_nothing():
    fake = FakeControlPlane(n_models=100)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        board = app.screen.query_one("#leaderboard", LiveTable)
        assert board.row_count == 100
        serial = app.snapshot.serial
        await wait_for(pilot, lambda: app.snapshot.serial > serial + 1)
        assert board.updates == 0
        fake.board = [dataclasses.replace(fake.board[0], scores={"recent": 0.1}), *fake.board[1:]]
        serial = app.snapshot.serial
        await wait_for(pilot, lambda: app.snapshot.serial > serial + 1)
        assert board.row_count == 100


async def test_models_screen_rows_and_detail_panel(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        await pilot.press("m")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        table = screen.query_one("#models", LiveTable)
        assert table.row_count == 6
        assert str(table.get_cell("model-002", "failures")) == "3"
        assert str(table.get_cell("model-003", "state")) == "STOPPED"
        assert str(table.get_cell("model-000", "deployment")) == "dep-000-a1"
        predictions = screen.query_one("#predictions", LiveTable)
        await wait_for(pilot, lambda: predictions.row_count == 8)
        assert fake.prediction_requests[-1] == "model-000"
        await pilot.press("down", "down")
        await wait_for(pilot, lambda: fake.prediction_requests[-1] == "model-002")
        assert screen.selected_model == "model-002"
        info = str(screen.query_one("#model-info", Static).render())
        assert "ZeroDivisionError: division by zero [in predict]" in info
        await wait_for(pilot, lambda: predictions.row_ids[0] == "model-002-p0")


async def test_process_keys_call_the_control_plane(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        await pilot.press("p")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProcessesScreen)
        await wait_for(pilot, lambda: screen.selected_process == "market-data")
        await pilot.press("r")
        await wait_for(pilot, lambda: fake.actions == [("market-data", "restart")])
        await pilot.press("down", "down")
        await pilot.press("x")
        await wait_for(pilot, lambda: fake.actions[-1] == ("predict", "stop"))
        await pilot.press("down", "s")
        await wait_for(pilot, lambda: fake.actions[-1] == ("score", "start"))
        assert len(fake.actions) == 3


async def test_failed_worker_shows_why(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("down", "down", "down")
        await pilot.pause()
        assert app.screen.selected_process == "score"
        detail = _text(app, "#process-detail")
        assert "exited with code 2" in detail
        assert "ValueError: [bad] scoring slot" in detail  # brackets are not markup
        table = app.screen.query_one("#processes", LiveTable)
        assert str(table.get_cell("score", "state")) == "fatal"
        assert str(table.get_cell("market-data", "pid")) == "4101"


async def test_help_screen_opens_and_closes(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Restart" in text and "Dashboard" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ProcessesScreen)
        for close in ("question_mark", "q"):  # ? toggles; q closes help, not the app
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            await pilot.press(close)
            await pilot.pause()
            assert isinstance(app.screen, ProcessesScreen)
            assert app.is_running


async def test_command_palette_restarts_a_worker(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"restart worker predict")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: ("predict", "restart") in fake.actions)


async def test_command_palette_switches_view(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"show processes")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProcessesScreen))


async def test_unreachable_server_is_reported_and_retried(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        fake.down = True
        await wait_for(pilot, lambda: app.connection.kind == "unreachable")
        status = _text(app, "#status")
        assert "unreachable" in status and "retrying" in status
        assert app.screen.query_one("#leaderboard", LiveTable).row_count == 6  # kept
        fake.down = False
        await wait_for(pilot, lambda: app.connection.kind == "connected", within=8)


async def test_control_without_key_still_shows_the_leaderboard(fake: FakeControlPlane):
    from crunch_tui.control import ApiError

    async def refused(*_args: object, **_kwargs: object) -> list[object]:
        raise ApiError(401, "missing API key")

    fake.processes = refused  # type: ignore[method-assign]
    fake.models_health = refused  # type: ignore[method-assign]
    app = make_app(fake, stream_logs=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        assert app.screen.query_one("#leaderboard", LiveTable).row_count == 6
        assert "pass --api-key" in _text(app, "#status")


async def test_quit_in_attach_mode_exits_without_engine(fake: FakeControlPlane):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.loaded)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0
    assert fake.closed
