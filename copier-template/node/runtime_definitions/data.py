"""Market data in, ground truth out (RAW_INPUT_PROVIDER, GROUND_TRUTH_RESOLVER).

Both read the tape (``market_records``, written by the market-data worker) first; the
engine fetches from the feed only a window the tape does not cover.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crunch_engine.slots import defaults
from crunch_engine.slots.spec import TapeReader


async def provide_raw_input(
    *, tape: TapeReader, config: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """RAW_INPUT_PROVIDER: the raw data of one prediction round.

    Default: the latest ``lookback`` (60) candles of each asset of the config's scope
    template, oldest first: ``{"as_of": iso, "records": {asset: [candle, ...]}}``.
    """
    return await defaults.provide_raw_input(tape=tape, config=config, now=now)


async def resolve_ground_truth(
    *, prediction: Mapping[str, Any], tape: TapeReader
) -> dict[str, Any] | None:
    """GROUND_TRUTH_RESOLVER: what happened between ``performed_at`` and ``resolvable_at``.

    Default: the prices at both times from the tape and ``up`` (strictly higher). Return
    None while a price is missing or stale: the prediction then waits (and is marked
    UNRESOLVED after CRUNCH_SCORE_UNRESOLVED_AFTER_SECONDS), never scored on bad data.
    """
    return await defaults.resolve_price_move(prediction=prediction, tape=tape)
