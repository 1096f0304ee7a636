"""Scoring rules cross-checked against the reference library ``scoringrules``."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import scoringrules as sr

from crunch_engine.scoring import rules

RNG = random.Random(1234)
CASES = [
    (RNG.gauss(0, 2), [RNG.gauss(0.5, 1.5) for _ in range(RNG.randint(1, 60))]) for _ in range(200)
]


@pytest.mark.parametrize("estimator", ["qd", "nrg"])
def test_crps_ensemble_matches_scoringrules(estimator: str) -> None:
    for obs, members in CASES:
        expected = float(sr.crps_ensemble(obs, np.array(members), estimator=estimator))
        assert rules.crps_ensemble(obs, members) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_crps_gaussian_matches_scoringrules() -> None:
    for _ in range(500):
        obs, mu, sigma = RNG.gauss(0, 3), RNG.gauss(0, 3), RNG.uniform(0.01, 5)
        expected = float(sr.crps_normal(obs, mu, sigma))
        assert rules.crps_gaussian(obs, mu, sigma) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_crps_quantiles_matches_scoringrules() -> None:
    levels = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
    for _ in range(300):
        obs = RNG.gauss(0, 2)
        quantiles = sorted(RNG.gauss(0, 2) for _ in levels)
        expected = float(sr.crps_quantile(obs, np.array(quantiles), np.array(levels)))
        assert rules.crps_quantiles(obs, quantiles, levels) == pytest.approx(
            expected, rel=1e-9, abs=1e-12
        )


def test_brier_and_log_match_scoringrules() -> None:
    for _ in range(500):
        p, y = RNG.uniform(0.001, 0.999), RNG.random() < 0.5
        assert rules.brier(p, y) == pytest.approx(float(sr.brier_score(int(y), p)))
        assert rules.log_score(p, y) == pytest.approx(float(sr.log_score(int(y), p)))


def test_gaussian_ensemble_converges_to_the_closed_form() -> None:
    gen = random.Random(7)
    members = [gen.gauss(1.0, 2.0) for _ in range(20_000)]
    assert rules.crps_ensemble(0.3, members) == pytest.approx(
        rules.crps_gaussian(0.3, 1.0, 2.0), rel=0.02
    )


def test_brier_is_strictly_proper() -> None:
    """The expected score under belief q is minimised exactly at the report q."""
    for q in (0.1, 0.37, 0.5, 0.8):
        expected = [
            q * rules.brier(p / 100, True) + (1 - q) * rules.brier(p / 100, False)
            for p in range(101)
        ]
        assert min(range(101), key=expected.__getitem__) == round(q * 100)


def test_log_score_is_clipped_and_bounded() -> None:
    assert math.isfinite(rules.log_score(0.0, True))
    assert rules.log_score(0.0, True) == pytest.approx(rules.RULES["log"].worst)
    assert rules.log_score(1.0, True) == pytest.approx(rules.RULES["log"].lower)


@pytest.mark.parametrize("bad", [-0.1, 1.1, math.nan, "0.5", True])
def test_probability_rules_refuse_bad_input(bad: object) -> None:
    with pytest.raises(ValueError):
        rules.brier(bad, True)  # type: ignore[arg-type]


def test_unbounded_rules_need_an_explicit_penalty_and_can_be_bounded() -> None:
    with pytest.raises(ValueError, match="unbounded"):
        _ = rules.RULES["crps_ensemble"].worst
    assert rules.bounded(math.inf, 5.0) == 5.0
    assert rules.bounded(2.0, 5.0) == 2.0
    assert rules.RULES["brier"].worst == 1.0
    assert all(rule.proper for rule in rules.RULES.values())
