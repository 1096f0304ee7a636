"""Slot implementations used by the scoring tests."""

from __future__ import annotations

from crunch_engine.slots.defaults import score_brier


def brier_or_break(*, output, ground_truth):
    """Brier, except for two magic outputs: one raises, one returns NaN."""
    if output["p_up"] == 0.13:
        raise ZeroDivisionError("the scoring function broke on this one")
    if output["p_up"] == 0.14:
        return float("nan")
    return score_brier(output=output, ground_truth=ground_truth)
