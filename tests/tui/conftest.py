"""Fixtures for the TUI tests: a fake engine, a frozen clock, a fixed terminal size."""

from __future__ import annotations

from datetime import datetime

import pytest

from crunch_tui.app import CrunchApp
from tests.tui.fake import T0, FakeControlPlane

SIZE = (140, 45)


def frozen_clock() -> datetime:
    return T0


def make_app(fake: FakeControlPlane | None = None, **kwargs: object) -> CrunchApp:
    kwargs.setdefault("clock", frozen_clock)
    kwargs.setdefault("blink", False)
    kwargs.setdefault("poll_interval", 0.2)
    return CrunchApp(fake or FakeControlPlane(), **kwargs)  # type: ignore[arg-type]


async def wait_for(pilot, predicate, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Pause the pilot until ``predicate()`` holds (data arrives from background workers)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)
    await pilot.pause()


@pytest.fixture
def fake() -> FakeControlPlane:
    return FakeControlPlane()
