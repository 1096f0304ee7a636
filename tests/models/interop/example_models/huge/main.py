from crunch_engine.demo.tracker import TrackerBase


class Huge(TrackerBase):
    def predict(self, **scope):
        return "x" * (65 * 1024 * 1024)

    def small(self):
        return "ok"

    def sized(self, n):
        return "x" * n
