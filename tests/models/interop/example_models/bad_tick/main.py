"""tick always raises; predict works (a failed tick must not break the predict)."""

from crunch_engine.demo.tracker import TrackerBase


class BadTick(TrackerBase):
    def tick(self, data):
        raise RuntimeError("tick exploded")

    def predict(self, **scope):
        return {"p_up": 0.25}
