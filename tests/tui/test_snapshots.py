"""SVG snapshots of the main screens: fixed data, a frozen clock, no cursor blink and a
fixed terminal size, so a baseline only changes when the UI does.

Regenerate after an intended UI change: ``pytest tests/tui --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.tui.conftest import SIZE, make_app, wait_for
from tests.tui.fake import FakeControlPlane


def _ready(*keys: str, settle: float = 0.3) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.snapshot.loaded and len(app.logbook) >= 6)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await pilot.pause(settle)

    return run_before


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("dashboard", ()),
        ("models", ("m", "down", "down")),
        ("logs", ("l",)),
        ("processes", ("p", "down", "down", "down")),
        ("help", ("question_mark",)),
    ],
)
def test_screen_snapshot(snap_compare: Any, name: str, keys: tuple[str, ...]) -> None:
    app = make_app(FakeControlPlane())
    assert snap_compare(app, terminal_size=SIZE, run_before=_ready(*keys))


def test_unreachable_snapshot(snap_compare: Any) -> None:
    fake = FakeControlPlane()
    fake.down = True
    app = make_app(fake, stream_logs=False, poll_interval=5.0)  # one failure: a fixed delay

    async def run_before(pilot: Any) -> None:
        await wait_for(pilot, lambda: pilot.app.connection.kind == "unreachable")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
