"""Noisy: a coin flip with an opinion. Shows what a poorly calibrated model scores."""

import random

from crunch_engine.demo.tracker import TrackerBase


class Noisy(TrackerBase):
    def __init__(self):
        super().__init__()
        self.rng = random.Random(42)

    def predict(self, asset, horizon_seconds, **scope):
        return {"p_up": round(self.rng.uniform(0.05, 0.95), 4)}
