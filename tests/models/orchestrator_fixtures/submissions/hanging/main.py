"""A submission with a method that never returns: trips the model server's watchdog."""

import time

from crunch_engine.demo.tracker import TrackerBase


class Hanging(TrackerBase):
    def hang(self):
        time.sleep(3600)

    def predict(self, asset, horizon_seconds, **scope):
        return {"p_up": 0.5}
