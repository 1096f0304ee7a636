"""Mean reversion: prices far above their recent average tend to come back down."""

import math

from crunch_engine.demo.tracker import TrackerBase


class MeanReversion(TrackerBase):
    def predict(self, asset, horizon_seconds, **scope):
        closes = self.closes(asset)[-30:]
        if len(closes) < 5:
            return {"p_up": 0.5}
        mean = sum(closes) / len(closes)
        gap = closes[-1] / mean - 1.0
        return {"p_up": 1.0 / (1.0 + math.exp(gap * 1500.0))}
