from crunch_engine.demo.tracker import TrackerBase


class BadCtor(TrackerBase):
    def __init__(self):
        raise RuntimeError("cannot start without a GPU")
