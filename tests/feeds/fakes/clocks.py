"""A real clock that a test can push forward, shared by a feed and a fake server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from crunch_engine.timeutil import to_epoch_ms


class JumpClock:
    """Real time plus an offset: sleeps are real (short), ``jump`` skips minutes at once.

    Used where a feed talks to a fake server over real sockets: both read this clock, so
    "three minutes later" is one call instead of three minutes.
    """

    def __init__(self, offset: timedelta = timedelta()) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def now_ms(self) -> int:
        return to_epoch_ms(self.now())

    def jump(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
