"""predict always raises; tick works (the client must cool it down per method)."""

from crunch_engine.demo.tracker import TrackerBase


class Raiser(TrackerBase):
    def predict(self, **scope):
        raise ValueError("boom: no prediction today")
