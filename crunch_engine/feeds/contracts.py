"""Feed contracts: what a provider produces and what the tape stores.

One ``MarketRecord`` is one data point. Tick values are ``{"price": p}``; candle values
are ``{"open", "high", "low", "close", "volume"}``. ``ts_event`` is market time (the open
time of a candle), always timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from crunch_engine.timeutil import ensure_utc

RecordKind = Literal["tick", "candle"]
CANDLE_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Identifies one feed series: the unit of a watermark."""

    provider: str
    asset: str
    kind: str
    granularity: str

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.asset}:{self.kind}:{self.granularity}"


@dataclass(frozen=True, slots=True)
class MarketRecord:
    provider: str
    asset: str
    kind: str
    granularity: str
    ts_event: datetime
    values: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts_event", ensure_utc(self.ts_event))

    @property
    def series(self) -> SeriesKey:
        return SeriesKey(self.provider, self.asset, self.kind, self.granularity)


@dataclass(frozen=True, slots=True)
class StoredMarketRecord(MarketRecord):
    """A record as read back from the tape, with the time it was ingested."""

    ts_ingested: datetime | None = None
