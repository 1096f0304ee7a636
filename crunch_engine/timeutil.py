"""One place for time: every timestamp in the engine is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused rather than guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: every timestamp must carry a timezone")
    return value.astimezone(UTC)


def to_iso(value: datetime | None) -> str | None:
    """ISO-8601 with an explicit offset (``Z`` for UTC), or None."""
    if value is None:
        return None
    return ensure_utc(value).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse ISO-8601 that carries an offset (``Z`` accepted); naive input is an error."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return ensure_utc(parsed)


def from_epoch_ms(ms: int | float) -> datetime:
    """A UTC datetime from milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000.0, UTC)


def to_epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware datetime."""
    return round(ensure_utc(value).timestamp() * 1000)
