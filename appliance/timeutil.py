"""Time helpers shared by the store, the policy and sync: aware UTC datetimes and ISO text.

Kept apart from the store so the pure decision modules (policy, match) need no SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The wall clock as an aware UTC datetime."""
    return datetime.now(UTC)


def to_iso(ts: datetime) -> str:
    """UTC ISO-8601 with milliseconds: the one timestamp format of the store (sorts as text)."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; a value without zone is taken as UTC."""
    ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
