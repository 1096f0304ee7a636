"""`python -m crunch_engine.cli`: the engine's commands (the `crunch` script adds `crunch tui`)."""

from crunch_engine.cli.main import run

run()
