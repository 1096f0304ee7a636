"""Capped exponential backoff with jitter: how long a failing process waits to restart.

Pure (the random source is passed in), so the delays are tested without sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from crunch_engine.supervisor.models import ProcessSpec


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial * factor**attempt``, capped at ``cap``, then shortened by up to ``jitter``.

    Jitter only shortens a delay, so ``cap`` really is the longest wait and a delay is
    never below ``(1 - jitter)`` of its base: two processes crashing together spread out.
    """

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.1

    @classmethod
    def from_spec(cls, spec: ProcessSpec) -> Backoff:
        return cls(
            initial=spec.backoff_initial_seconds,
            factor=spec.backoff_factor,
            cap=spec.backoff_max_seconds,
            jitter=spec.backoff_jitter,
        )

    def base(self, attempt: int) -> float:
        """The delay before jitter for the ``attempt``-th restart in a row (0-based)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        # Cap the exponent's effect before it can overflow a float on long crash loops.
        delay = self.initial
        for _ in range(attempt):
            delay *= self.factor
            if delay >= self.cap:
                return self.cap
        return min(delay, self.cap)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The jittered delay, in ``[(1 - jitter) * base, base]``."""
        base = self.base(attempt)
        draw = (rng or random).random()
        return base * (1.0 - self.jitter * draw)
