"""Fixtures for the supervisor tests: small real worker scripts written into tmp_path.

Tests marked ``both_loops`` run on asyncio's default loop and on uvloop.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

from crunch_engine.supervisor import ProcessSpec


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_loops: run on asyncio's default loop and on uvloop")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.get_closest_marker("both_loops"):
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


SpecFactory = Callable[..., ProcessSpec]


@pytest.fixture
def make_spec(tmp_path: Path) -> SpecFactory:
    """``make_spec(name, script, *args, **spec_fields)``: a spec running ``script``
    (source text) with fast test timings unless overridden."""

    def make(name: str, script: str, *args: str, **fields: Any) -> ProcessSpec:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(script))
        defaults: dict[str, Any] = {
            "stable_after_seconds": 0.3,
            "backoff_initial_seconds": 0.1,
            "backoff_max_seconds": 0.5,
            "stop_grace_seconds": 2.0,
        }
        defaults.update(fields)
        return ProcessSpec(name=name, argv=[sys.executable, str(path), *args], **defaults)

    return make
