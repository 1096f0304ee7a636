"""The participant model interface of the demo challenge (what `tracker.py` of a public
challenge package exposes).

The engine never hard-codes this class or its method names: the base class is a setting
(``CRUNCH_MODEL_BASE_CLASS``) and PREDICT_CALL_BUILDER decides which method is called
with which arguments.
"""

from __future__ import annotations

from typing import Any


class TrackerBase:
    """Subclass it in your submission and implement ``predict``.

    ``tick(data)`` receives the latest inference input before every prediction round:
    ``{"as_of": ISO time, "candles": {asset: [{"ts", "open", "high", "low", "close",
    "volume"}, ...oldest first]}}``. ``predict(**scope)`` receives the scope
    (``asset``, ``horizon_seconds``, ``step_seconds``...) and returns the prediction
    payload, e.g. ``{"p_up": 0.55}``: the probability that the price is higher after
    ``horizon_seconds``.
    """

    def __init__(self) -> None:
        self.latest: dict[str, Any] = {}

    def tick(self, data: dict[str, Any]) -> None:
        self.latest = data

    def closes(self, asset: str) -> list[float]:
        """Close prices of ``asset`` from the latest tick, oldest first."""
        candles = (self.latest.get("candles") or {}).get(asset) or []
        return [float(c["close"]) for c in candles if "close" in c]

    def predict(self, **scope: Any) -> dict[str, Any]:
        raise NotImplementedError("implement predict(**scope) -> {'p_up': probability}")
