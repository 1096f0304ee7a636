"""crunch-control engine: the headless predict -> score -> rank loop of a Crunch."""

__version__ = "0.1.0"
