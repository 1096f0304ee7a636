"""`python -m crunch_engine.cli` is the same as the `crunch` console script."""

from crunch_engine.cli.main import run

run()
