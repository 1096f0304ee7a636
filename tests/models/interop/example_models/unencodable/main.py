from crunch_engine.demo.tracker import TrackerBase


class Unencodable(TrackerBase):
    def predict(self, **scope):
        return {1, 2, 3}

    def nested(self):
        return {"when": object()}

    def flag(self):
        return True

    def big_int(self):
        return 2**70

    def nothing(self):
        return None

    def echo(self, *args, **kwargs):
        return [list(args), kwargs]
