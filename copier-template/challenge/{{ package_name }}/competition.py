"""The competition's parameters, as the node runs them (``competition.json``).

Rendered by the template from the same answers as the node's ``config/pack.json``, so
local evaluation asks the same questions the node asks.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

_DATA: dict[str, Any] = json.loads(
    (files(__package__) / "competition.json").read_text(encoding="utf-8")
)

NAME: str = _DATA["name"]
ASSETS: list[str] = list(_DATA["assets"])
"""Every asset the node predicts."""
HORIZON_SECONDS: int = int(_DATA["horizon_seconds"])
"""Models predict whether the price is higher this many seconds later."""
INTERVAL_SECONDS: int = int(_DATA["interval_seconds"])
"""A prediction round starts every this many seconds."""
LOOKBACK: int = int(_DATA["lookback"])
"""How many candles of each asset ``tick`` receives."""
SCHEDULED_PREDICTION_CONFIGS: list[dict[str, Any]] = list(_DATA["scheduled_prediction_configs"])
EVALUATION_ASSETS: list[str] = list(_DATA["evaluation_assets"])
"""Assets with bundled candles (``data/candles.csv``) for local evaluation."""
WORST_SCORE: float = float(_DATA["scoring"]["worst_score"])


def scopes_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The scopes one scheduled config produces: one per asset, as the node builds them."""
    template = dict(config["scope_template"])
    assets = template.pop("assets", None) or [template.pop("asset")]
    template.pop("asset", None)
    template.pop("lookback", None)
    return [{"asset": asset, **template} for asset in assets]


def scopes() -> list[dict[str, Any]]:
    """The scopes of one prediction round: what ``predict(**scope)`` receives."""
    return [scope for config in SCHEDULED_PREDICTION_CONFIGS for scope in scopes_of(config)]
