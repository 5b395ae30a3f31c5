"""Time as the API server writes it: RFC 3339 in UTC, whole seconds ("2026-11-29T21:00:00Z").

The decisions never read the clock themselves: the reconcile hands them the time, so they stay pure and testable.
"""

from __future__ import annotations

import datetime

UTC = datetime.UTC
FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EPOCH = datetime.datetime.fromtimestamp(0, UTC)


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def stamp(t: datetime.datetime | None = None) -> str:
    """`t` (default: now) as the API server writes times."""
    return (t or now()).astimezone(UTC).strftime(FORMAT)


def parse(value: str | None) -> datetime.datetime | None:
    """A time from an object (None when absent or unreadable); a time without a zone is taken as UTC."""
    if not value:
        return None
    try:
        t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


__all__ = ["EPOCH", "FORMAT", "UTC", "now", "parse", "stamp"]
