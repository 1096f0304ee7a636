"""How predictions are scored: the rule the node uses, for local self-evaluation.

A prediction ``{"p_up": p}`` is checked (``validate``) and, once the horizon has passed,
Brier scored against what happened: ``(p - y)^2`` with ``y = 1`` when the price went up
(strictly higher at the horizon than when the prediction was made), else ``y = 0``.
Scores are in [0, 1]; lower is better; ``0.25`` is what always answering 0.5 earns. The
Brier score is strictly proper: your best expected score comes from reporting your true
belief. An answer that is missing, late, failed or invalid scores ``WORST_SCORE``.

The leaderboard ranks models by their mean score over rolling windows (the last 24 hours
first, then 72 hours, then 7 days).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

RULE = "brier"
LOWER_IS_BETTER = True
BEST_SCORE = 0.0
WORST_SCORE = 1.0


def validate(output: Any) -> dict[str, float]:
    """The node's check of a model's answer: ``{"p_up": p}`` with ``p`` a finite number in
    [0, 1] (other keys are dropped). Raises ``ValueError`` saying what is wrong."""
    if not isinstance(output, Mapping):
        raise ValueError(f"expected an object with 'p_up', got {type(output).__name__}")
    if "p_up" not in output:
        raise ValueError(f"missing 'p_up' (keys: {sorted(map(str, output))[:10]})")
    value = output["p_up"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'p_up' must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"'p_up' must be within [0, 1], got {value!r}")
    return {"p_up": value}


def ground_truth(start_price: float, end_price: float) -> dict[str, Any]:
    """What happened over the horizon, as the node resolves it from the market tape."""
    if start_price <= 0:
        raise ValueError(f"start price must be positive, got {start_price!r}")
    return {
        "start_price": start_price,
        "end_price": end_price,
        "return": end_price / start_price - 1.0,
        "up": end_price > start_price,
    }


def brier(p_up: float, up: bool) -> float:
    """``(p_up - outcome)^2``: 0 is a perfect forecast, 1 the worst."""
    if not 0.0 <= p_up <= 1.0:
        raise ValueError(f"p_up must be within [0, 1], got {p_up!r}")
    return (p_up - (1.0 if up else 0.0)) ** 2


def score(output: Mapping[str, Any], truth: Mapping[str, Any]) -> float:
    """The score of one validated prediction against its ground truth."""
    return brier(float(output["p_up"]), bool(truth["up"]))


def score_answer(answer: Any, truth: Mapping[str, Any]) -> tuple[float, str | None]:
    """Score a raw answer as the node does: invalid answers get ``WORST_SCORE``.
    Returns ``(score, reason the answer was rejected or None)``."""
    try:
        output = validate(answer)
    except ValueError as error:
        return WORST_SCORE, str(error)
    return score(output, truth), None
