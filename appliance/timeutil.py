"""Time helpers shared by the store, the policy and sync: aware UTC datetimes and ISO text.

Kept apart from the store so the pure decision modules (policy, match) need no SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    """The wall clock as an aware UTC datetime."""
    return datetime.now(UTC)


def to_iso(ts: datetime) -> str:
    """UTC ISO-8601 with milliseconds: the one timestamp format of the store (sorts as text)."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


#: Instants the store accepts: a day inside datetime's range, so that converting one to UTC or to
#: any door's zone can never overflow (``0001-01-01T00:00:00+14:00`` is before year 1 in UTC).
EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


class OutOfRange(ValueError):
    """A well-formed timestamp outside ``EARLIEST..LATEST``."""


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; a value without zone is taken as UTC.

    Raises ValueError for text that is not one, or for an instant outside ``EARLIEST..LATEST``.
    """
    ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST <= ts <= LATEST
    except OverflowError:  # comparing converts to UTC, which overflows at the very edges
        in_range = False
    if not in_range:
        raise OutOfRange(f"{text.strip()!r} is out of range (0001-01-02 to 9999-12-30 in UTC)")
    return ts
