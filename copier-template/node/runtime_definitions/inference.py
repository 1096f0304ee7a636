"""What models receive and how they are called (INFERENCE_INPUT_BUILDER,
PREDICTION_SCOPE_BUILDER, PREDICT_CALL_BUILDER).

The challenge package documents these payloads (``schemas/``) and its ``TrackerBase``
implements the calls: change both repos together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crunch_engine.slots import defaults
from crunch_engine.slots.spec import ModelCall


def build_inference_input(*, raw_input: Mapping[str, Any]) -> dict[str, Any]:
    """INFERENCE_INPUT_BUILDER: the payload of ``tick(data)``:
    ``{"as_of": iso, "candles": {asset: [candle, ...]}}`` (candles oldest first)."""
    return defaults.build_inference_input(raw_input=raw_input)


def build_prediction_scopes(*, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """PREDICTION_SCOPE_BUILDER: one scope per asset of the config's scope template, e.g.
    ``{"asset": "BTC", "horizon_seconds": 300, "step_seconds": 60}``; each becomes one
    ``predict(**scope)`` call per model."""
    return defaults.build_prediction_scopes(config=config)


def build_predict_call(*, phase: str, payload: Any) -> ModelCall:
    """PREDICT_CALL_BUILDER: ``tick(payload)`` then ``predict(**scope)`` on the challenge's
    ``TrackerBase``. For models written against CrunchDAO's tracker interface use
    ``defaults.build_crunchdao_call`` instead."""
    return defaults.build_tracker_call(phase=phase, payload=payload)
