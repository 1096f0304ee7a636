"""Scores, windows and ranks (SCORING_FUNCTION, MODEL_SCORE_AGGREGATOR, LEADERBOARD_RANKER).

SCORING_FUNCTION must stay the rule the challenge's ``scoring.py`` publishes (and the
pack's ``scoring.rule``), so that participants' local evaluation predicts their rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crunch_engine.slots import defaults
from crunch_engine.slots.spec import WindowStats


def score_prediction(*, output: Mapping[str, Any], ground_truth: Mapping[str, Any]) -> float:
    """SCORING_FUNCTION: Brier score ``(p_up - up)^2`` in [0, 1]; lower is better."""
    return defaults.score_brier(output=output, ground_truth=ground_truth)


def aggregate_model_scores(*, windows: Mapping[str, WindowStats]) -> dict[str, dict[str, Any]]:
    """MODEL_SCORE_AGGREGATOR: ``{window: {"value": mean score, "count": n}}``."""
    return defaults.aggregate_window_means(windows=windows)


def rank_leaderboard(
    *, model_scores: Sequence[Mapping[str, Any]], rank_by: str, direction: str
) -> list[dict[str, Any]]:
    """LEADERBOARD_RANKER: ordered by the ``rank_by`` window (``asc``: lower is better),
    ties broken by the other windows, then the model id."""
    return defaults.rank_by_primary_window(
        model_scores=model_scores, rank_by=rank_by, direction=direction
    )
