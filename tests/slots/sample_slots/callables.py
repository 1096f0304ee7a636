"""Slot implementations used by the resolver tests."""

from __future__ import annotations

NOT_CALLABLE = 42


def score_subset(output, ground_truth):  # accepts a subset of the documented arguments
    return 0.0


def score_kwargs(**arguments):
    return float(len(arguments))


async def score_async(*, output, ground_truth, scope):
    return 1.0


def score_needs_extra(output, ground_truth, weights):
    return 0.0


def score_optional_extra(output, ground_truth, weights=None):
    return 0.0


class Scorer:
    def score(self, output, ground_truth):
        return 2.0


scorer = Scorer()
