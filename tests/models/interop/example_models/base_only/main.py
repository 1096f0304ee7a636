"""Only imports the base class and re-exports it: nothing to instantiate."""

from crunch_engine.demo.tracker import TrackerBase

Alias = TrackerBase


class Unrelated:
    pass
