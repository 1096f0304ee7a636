"""Momentum: recent gains suggest further gains."""

import math

from crunch_engine.demo.tracker import TrackerBase


class Momentum(TrackerBase):
    def predict(self, asset, horizon_seconds, **scope):
        closes = self.closes(asset)[-12:]
        if len(closes) < 2 or closes[0] <= 0:
            return {"p_up": 0.5}
        drift = closes[-1] / closes[0] - 1.0
        return {"p_up": 1.0 / (1.0 + math.exp(-drift * 2000.0))}
