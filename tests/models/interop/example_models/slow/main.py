import time

from crunch_engine.demo.tracker import TrackerBase


class Slow(TrackerBase):
    def predict(self, seconds=1.0, **scope):
        time.sleep(seconds)
        return {"p_up": 0.5, "slept": seconds}
