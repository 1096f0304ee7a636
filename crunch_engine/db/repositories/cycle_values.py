"""Values a predict cycle's rows share, encoded once per cycle write.

The hundred predictions of a cycle carry one performed-at time, one due time and one
scope per scope index: encoding each distinct value once instead of once per row is
most of what the cycle write spends in Python.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


class SharedValues:
    """Per write: equal times (whatever their zone) and identical scope objects are
    converted once."""

    __slots__ = ("_json", "_sqlite", "_utc")

    def __init__(self) -> None:
        self._utc: dict[datetime, datetime] = {}
        self._sqlite: dict[datetime, str] = {}
        self._json: dict[int, tuple[Any, str]] = {}

    def utc(self, value: datetime) -> datetime:
        """``value`` in UTC; naive datetimes are refused rather than guessed."""
        known = self._utc.get(value)
        if known is None:
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
            known = self._utc[value] = value.astimezone(UTC)
        return known

    def sqlite_time(self, value: datetime) -> str:
        """As ``UTCDateTime`` stores it on SQLite: UTC wall time with microseconds."""
        known = self._sqlite.get(value)
        if known is None:
            text = self.utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")
            known = self._sqlite[value] = text
        return known

    def json(self, value: Any) -> str:
        """JSON text as the JSON column type writes it (``None`` is JSON null); one
        object shared by many rows is serialised once (it must not change meanwhile)."""
        known = self._json.get(id(value))
        if known is None or known[0] is not value:
            known = self._json[id(value)] = (value, json.dumps(value))
        return known[1]
