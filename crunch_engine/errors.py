"""Errors the engine reports to a person: each carries a message that names what is wrong."""

from __future__ import annotations


class CrunchError(Exception):
    """Base class. The CLI prints the message and exits with ``exit_code``."""

    exit_code: int = 1


class ConfigError(CrunchError):
    """Bad configuration (settings, packs, specs, callables): fix the input, then retry."""

    exit_code = 2
