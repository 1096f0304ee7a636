"""What the web UI shows (REPORT_SCHEMA_PROVIDER): leaderboard columns, metric widgets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crunch_engine.slots import defaults


def report_schema(*, windows: Mapping[str, int]) -> dict[str, Any]:
    """REPORT_SCHEMA_PROVIDER: ``{schema_version, leaderboard_columns, metrics_widgets}``;
    one score column per rolling window and a score chart."""
    return defaults.report_schema(windows=windows)
