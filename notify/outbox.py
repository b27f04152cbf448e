"""The outbox in the local store: channels, claiming due rows, and marking them sent or retried.

Delivery guarantee (at least once, no double send "within reason"): a row is *claimed*
(``pending`` -> ``sending``, committed) before anything goes out and marked ``sent`` in its own
commit right after the receiver accepted it. A crash between the two leaves it ``sending``; at
the next start :func:`recover` puts it back to ``pending`` and it is sent again. So a message is
never lost, and it is sent twice only when the process dies in the few milliseconds between a
receiver's "accepted" and our commit. Webhook bodies and MQTT payloads carry the event id, so a
receiver can drop that rare duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from appliance.store import to_iso


def configure_channels(
    db: sqlite_utils.Database, channels: dict[str, list[str] | None], now: datetime
) -> None:
    """Declare which channels get outbox rows, and for which kinds (None = every kind).

    A channel that is no longer configured stops getting rows; its waiting rows are dropped
    (nobody is there to receive them).
    """
    with db.conn:
        db.execute(
            f"DELETE FROM outbox_channels WHERE channel NOT IN ({','.join('?' * len(channels))})"
            if channels
            else "DELETE FROM outbox_channels",
            list(channels),
        )
        for name, kinds in channels.items():
            db.execute(
                "INSERT INTO outbox_channels (channel, kinds, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(channel) DO UPDATE SET kinds = excluded.kinds, "
                "updated_at = excluded.updated_at",
                [name, None if kinds is None else "," + ",".join(kinds) + ",", to_iso(now)],
            )
        db.execute(
            "UPDATE outbox SET status = 'dropped', last_error = 'channel no longer configured' "
            f"WHERE status IN ('pending', 'sending') AND channel NOT IN "
            f"({','.join('?' * len(channels)) or 'NULL'})",
            list(channels),
        )


def recover(db: sqlite_utils.Database) -> int:
    """Put rows left ``sending`` by a crash back to ``pending``; returns how many."""
    with db.conn:
        return db.execute("UPDATE outbox SET status = 'pending' WHERE status = 'sending'").rowcount


def due(
    db: sqlite_utils.Database, channel: str, now: datetime, limit: int = 50
) -> list[dict[str, Any]]:
    """Pending rows of a channel whose time has come, oldest first, with their event."""
    rows = db.query(
        "SELECT o.id AS outbox_id, o.attempts, o.created_at AS queued_at, e.* "
        "FROM outbox o LEFT JOIN events e ON e.id = o.event_id "
        "WHERE o.channel = ? AND o.status = 'pending' AND o.next_at <= ? "
        "ORDER BY o.id LIMIT ?",
        [channel, to_iso(now), limit],
    )
    return [dict(r) for r in rows]


def claim(db: sqlite_utils.Database, ids: Iterable[int], now: datetime) -> list[int]:
    """Take rows for sending (one commit); returns the ids this process got."""
    got = []
    with db.conn:
        for oid in ids:
            cur = db.execute(
                "UPDATE outbox SET status = 'sending', claimed_at = ?, attempts = attempts + 1 "
                "WHERE id = ? AND status = 'pending'",
                [to_iso(now), oid],
            )
            if cur.rowcount:
                got.append(oid)
    return got


def mark_sent(
    db: sqlite_utils.Database, ids: Iterable[int], now: datetime, status: str = "sent"
) -> None:
    with db.conn:
        db.conn.executemany(
            "UPDATE outbox SET status = ?, sent_at = ?, last_error = NULL WHERE id = ?",
            [(status, to_iso(now), oid) for oid in ids],
        )


def mark_retry(
    db: sqlite_utils.Database, ids: Iterable[int], error: str, next_at: datetime
) -> None:
    with db.conn:
        db.conn.executemany(
            "UPDATE outbox SET status = 'pending', next_at = ?, last_error = ? WHERE id = ?",
            [(to_iso(next_at), error[:500], oid) for oid in ids],
        )


def mark_failed(db: sqlite_utils.Database, ids: Iterable[int], error: str) -> None:
    with db.conn:
        db.conn.executemany(
            "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?",
            [(error[:500], oid) for oid in ids],
        )


def defer(db: sqlite_utils.Database, ids: Iterable[int], next_at: datetime) -> None:
    """Rate-limited rows wait (no attempt counted)."""
    with db.conn:
        db.conn.executemany(
            "UPDATE outbox SET next_at = ? WHERE id = ? AND status = 'pending'",
            [(to_iso(next_at), oid) for oid in ids],
        )


def sent_times(
    db: sqlite_utils.Database, channel: str, kind: str, now: datetime, window: timedelta
) -> list[datetime]:
    """When messages of ``kind`` went out on ``channel`` in the window (a summary counts once)."""
    from appliance.store import parse_iso

    rows = db.execute(
        "SELECT o.sent_at, o.status FROM outbox o JOIN events e ON e.id = o.event_id "
        "WHERE o.channel = ? AND e.kind = ? AND o.status IN ('sent', 'summarized') "
        "AND o.sent_at >= ?",
        [channel, kind, to_iso(now - window)],
    ).fetchall()
    singles = [r[0] for r in rows if r[1] == "sent"]
    summaries = {r[0] for r in rows if r[1] == "summarized"}  # one message each
    return [parse_iso(t) for t in [*singles, *summaries]]


def counts(db: sqlite_utils.Database) -> dict[str, dict[str, int]]:
    """Rows per channel and status."""
    out: dict[str, dict[str, int]] = {}
    for channel, status, n in db.execute(
        "SELECT channel, status, count(*) FROM outbox GROUP BY channel, status"
    ):
        out.setdefault(channel, {})[status] = n
    return out


def recent(db: sqlite_utils.Database, limit: int = 50) -> list[dict[str, Any]]:
    """The latest sends and failures, newest first (for the API and the console)."""
    rows = db.query(
        "SELECT o.id, o.channel, o.status, o.attempts, o.created_at, o.sent_at, o.last_error, "
        "o.event_id, e.kind, e.door, e.ts FROM outbox o LEFT JOIN events e ON e.id = o.event_id "
        "WHERE o.status != 'pending' OR o.attempts > 0 ORDER BY o.id DESC LIMIT ?",
        [limit],
    )
    return [dict(r) for r in rows]


def purge(db: sqlite_utils.Database, before: datetime) -> int:
    """Forget finished rows (sent, summarized, failed, dropped) queued before ``before``."""
    with db.conn:
        return db.execute(
            "DELETE FROM outbox WHERE status IN ('sent', 'summarized', 'failed', 'dropped') "
            "AND created_at < ?",
            [to_iso(before)],
        ).rowcount
