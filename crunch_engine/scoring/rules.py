"""Scoring rules, each with what it rewards, its range, and whether it is proper.

All rules here are negatively oriented (lower is better) and strictly proper: a
forecaster minimises its expected score only by reporting its true belief. Rules used for
ranking must be bounded (``ScoringRule.worst``), so that a penalty for a missing or
invalid prediction is a finite, known number and one huge error cannot dominate a window.
Cross-checked in tests against the ``scoringrules`` package.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LOG_SCORE_EPSILON = 1e-4
_SQRT_PI = math.sqrt(math.pi)


@dataclass(frozen=True, slots=True)
class ScoringRule:
    name: str
    proper: bool
    lower: float
    upper: float | None
    """None: unbounded (bound it before using it for ranking)."""
    rewards: str

    @property
    def worst(self) -> float:
        if self.upper is None:
            raise ValueError(f"{self.name} is unbounded: give an explicit penalty")
        return self.upper


def _check_probability(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
        raise ValueError(f"probability must be a finite number, got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be within [0, 1], got {p!r}")
    return float(p)


def brier(p_up: float, outcome: bool) -> float:
    """Brier score ``(p - y)^2``: squared error of a probability. Range [0, 1]."""
    return (_check_probability(p_up) - (1.0 if outcome else 0.0)) ** 2


def log_score(p_up: float, outcome: bool, epsilon: float = LOG_SCORE_EPSILON) -> float:
    """Logarithmic score ``-log p(outcome)``, with p clipped to [eps, 1 - eps] so the
    score stays finite. Range [-log(1 - eps), -log(eps)]; punishes confident mistakes
    much harder than Brier."""
    p = min(1.0 - epsilon, max(epsilon, _check_probability(p_up)))
    return -math.log(p if outcome else 1.0 - p)


def crps_ensemble(observation: float, members: Sequence[float]) -> float:
    """CRPS of the empirical distribution of an ensemble (energy form,
    ``E|X - y| - E|X - X'| / 2``), computed in O(n log n). Range [0, inf)."""
    values = sorted(float(m) for m in members)
    n = len(values)
    if n == 0:
        raise ValueError("an ensemble needs at least one member")
    if not all(math.isfinite(v) for v in values) or not math.isfinite(observation):
        raise ValueError("ensemble members and the observation must be finite")
    spread_to_obs = sum(abs(v - observation) for v in values) / n
    # sum_{i,j} |x_i - x_j| = 2 * sum_i (2i - n + 1) x_(i) for sorted x, i from 0.
    pair_sum = 2.0 * sum((2 * i - n + 1) * v for i, v in enumerate(values))
    return spread_to_obs - pair_sum / (2.0 * n * n)


def crps_gaussian(observation: float, mu: float, sigma: float) -> float:
    """Closed-form CRPS of a normal forecast N(mu, sigma^2). Range [0, inf)."""
    if not sigma > 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    z = (observation - mu) / sigma
    cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return sigma * (z * (2.0 * cdf - 1.0) + 2.0 * pdf - 1.0 / _SQRT_PI)


def pinball(observation: float, quantile: float, level: float) -> float:
    """Pinball (quantile) loss of one quantile forecast at ``level`` in (0, 1)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"quantile level must be within (0, 1), got {level!r}")
    if observation >= quantile:
        return level * (observation - quantile)
    return (1.0 - level) * (quantile - observation)


def crps_quantiles(
    observation: float, quantiles: Sequence[float], levels: Sequence[float]
) -> float:
    """CRPS approximated from quantile forecasts: ``2/|Q| * sum of pinball losses``.
    Range [0, inf)."""
    if len(quantiles) != len(levels) or not quantiles:
        raise ValueError("quantiles and levels must be non-empty and of the same length")
    total = sum(pinball(observation, q, a) for q, a in zip(quantiles, levels, strict=True))
    return 2.0 * total / len(quantiles)


def bounded(score: float, cap: float) -> float:
    """Clamp an unbounded rule's score to [0, cap] for ranking (one outlier cannot
    dominate a window)."""
    if not math.isfinite(score):
        return cap
    return min(cap, max(0.0, score))


RULES: dict[str, ScoringRule] = {
    "brier": ScoringRule("brier", True, 0.0, 1.0, "calibrated probabilities of up/down"),
    "log": ScoringRule(
        "log",
        True,
        -math.log(1.0 - LOG_SCORE_EPSILON),
        -math.log(LOG_SCORE_EPSILON),
        "calibrated probabilities; confident mistakes cost the most",
    ),
    "crps_ensemble": ScoringRule(
        "crps_ensemble", True, 0.0, None, "sharp and calibrated predictive samples"
    ),
    "crps_gaussian": ScoringRule(
        "crps_gaussian", True, 0.0, None, "a sharp and calibrated normal forecast"
    ),
    "crps_quantiles": ScoringRule(
        "crps_quantiles", True, 0.0, None, "calibrated quantiles (pinball loss)"
    ),
}
