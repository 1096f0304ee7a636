"""The first subclass outside the base's own package is chosen; base-package ones skipped."""

from crunch_engine.demo.models.momentum.main import Momentum as AAA_FromBasePackage  # noqa: F401
from crunch_engine.demo.tracker import TrackerBase


class Mine(TrackerBase):
    def __init__(self, greeting="hello"):
        super().__init__()
        self.greeting = greeting

    def predict(self, **scope):
        return f"{self.greeting} from Mine"
