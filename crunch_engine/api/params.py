"""Query parameters shared by the report endpoints, validated with clear 4xx messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException, Query, status

from crunch_engine.timeutil import ensure_utc, utc_now

MAX_IDS = 1000
DEFAULT_RANGE = timedelta(days=30)


def bad_request(message: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, message)


def parse_time(name: str, value: str | None) -> datetime | None:
    """ISO-8601; a value without an offset is taken as UTC."""
    if value is None or not value.strip():
        return None
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            f"{name}={value!r} is not an ISO-8601 time (e.g. 2026-11-23T19:40:00Z)"
        ) from None
    return ensure_utc(parsed)


def parse_ids(value: str | None) -> list[str] | None:
    """``projectIds=a,b``: ONE comma-joined value, as the Crunch web UI sends it."""
    if value is None:
        return None
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if len(ids) > MAX_IDS:
        raise bad_request(f"projectIds lists {len(ids)} ids; at most {MAX_IDS} are allowed")
    return ids or None


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    model_ids: list[str] | None
    start: datetime
    end: datetime


def series_query(
    projectIds: str | None = Query(None, description="Comma-separated model ids"),
    start: str | None = Query(None, description="ISO-8601 start (default: end - 30 days)"),
    end: str | None = Query(None, description="ISO-8601 end (default: now)"),
) -> SeriesQuery:
    model_ids = parse_ids(projectIds)
    end_at = parse_time("end", end) or utc_now()
    start_at = parse_time("start", start) or end_at - DEFAULT_RANGE
    if start_at > end_at:
        raise bad_request(f"start ({start_at.isoformat()}) is after end ({end_at.isoformat()})")
    return SeriesQuery(model_ids, start_at, end_at)
