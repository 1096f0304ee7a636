"""The model interface: subclass ``TrackerBase`` and implement ``predict``.

For every prediction round the node calls, on every participant model:

1. ``tick(data)`` with the latest market data (``schemas/inference_input.schema.json``)::

       {"as_of": "2025-06-01T00:10:00+00:00",
        "candles": {"BTC": [{"ts": "2025-06-01T00:09:00+00:00", "kind": "candle",
                             "open": 104598.9, "high": 104599.0, "low": 104539.3,
                             "close": 104546.4, "volume": 45.237}, ...]}}

   The candles of each asset are oldest first; the last one is the newest closed candle.

2. ``predict(**scope)`` once per scope of the round (``schemas/scope.schema.json``), e.g.
   ``predict(asset="BTC", horizon_seconds=300, step_seconds=60)``; the tournament adds
   ``sample="in-sample"`` or ``"out-of-sample"``. It returns ``{"p_up": p}``
   (``schemas/prediction_output.schema.json``): the probability that the price of
   ``asset`` is higher ``horizon_seconds`` from now.

Predictions are Brier scored (``scoring.py``): lower is better, and reporting your true
belief is the best strategy. A missing, failed, late or invalid answer gets the worst
score, so answering 0.5 always beats not answering. Each call has a deadline (2 s by
default): keep ``tick`` and ``predict`` fast and do heavy work in ``__init__``.

The engine calls these methods by name (its PREDICT_CALL_BUILDER), so keep their names
and signatures; add helpers freely.
"""

from __future__ import annotations

from typing import Any


class TrackerBase:
    """Subclass it in your submission's ``main.py`` and implement ``predict``."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] = {}

    def tick(self, data: dict[str, Any]) -> None:
        """Receive the latest market data before the round's predictions."""
        self.latest = data

    def candles(self, asset: str) -> list[dict[str, Any]]:
        """Candles of ``asset`` from the latest tick, oldest first."""
        return list((self.latest.get("candles") or {}).get(asset) or [])

    def closes(self, asset: str) -> list[float]:
        """Close prices of ``asset`` from the latest tick, oldest first."""
        return [float(c["close"]) for c in self.candles(asset) if "close" in c]

    def predict(self, **scope: Any) -> dict[str, Any]:
        """Return ``{"p_up": probability}`` for ``scope["asset"]`` over
        ``scope["horizon_seconds"]``."""
        raise NotImplementedError("implement predict(**scope) -> {'p_up': probability}")
