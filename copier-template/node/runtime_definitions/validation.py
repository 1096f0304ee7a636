"""Checking model answers (INFERENCE_OUTPUT_VALIDATOR).

Keep it the same as ``validate`` in the challenge's ``scoring.py``: participants check
their answers locally with that one.
"""

from __future__ import annotations

from typing import Any

from crunch_engine.slots import defaults


def validate_output(*, output: Any) -> dict[str, float]:
    """INFERENCE_OUTPUT_VALIDATOR: ``{"p_up": p}`` with ``p`` a finite number in [0, 1];
    returns the normalised answer, raises ``ValueError`` (the prediction is stored as
    INVALID with the message, and gets the pack's penalty)."""
    return defaults.validate_up_probability(output=output)
