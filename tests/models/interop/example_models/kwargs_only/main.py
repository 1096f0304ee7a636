from crunch_engine.demo.tracker import TrackerBase


class Strict(TrackerBase):
    def predict(self, asset, horizon_seconds):
        return {"asset": asset, "horizon": horizon_seconds}

    def positional(self, a, b=2):
        return [a, b]
