"""The entry log: every door decision and alarm, kept until retention removes it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from appliance.store.db import atomic, new_id
from appliance.store.errors import NotFound
from appliance.timeutil import parse_iso, to_iso, utc_now

EVENT_COLUMNS = (
    "id",
    "ts",
    "door",
    "kind",
    "person_id",
    "person_name",
    "distance",
    "reason",
    "track_id",
    "snapshot_path",
    "details",
    "synced",
)


def insert_events(db: sqlite_utils.Database, events: Iterable[dict[str, Any]]) -> int:
    """Write a batch of events in one transaction; duplicate ids are ignored."""
    rows = []
    for ev in events:
        row = {k: ev.get(k) for k in EVENT_COLUMNS}
        row["id"] = row["id"] or new_id()
        row["ts"] = row["ts"] or to_iso(utc_now())
        row["synced"] = int(row["synced"] or 0)
        if isinstance(row["details"], (dict, list)):
            row["details"] = json.dumps(row["details"])
        rows.append(row)
    if not rows:
        return 0
    with atomic(db):
        db["events"].insert_all(rows, ignore=True)
    return len(rows)


def list_events(
    db: sqlite_utils.Database,
    *,
    since: str | None = None,
    until: str | None = None,
    kinds: Sequence[str] | None = None,
    person_id: str | None = None,
    door: str | None = None,
    limit: int = 100,
    offset: int = 0,
    before: str | None = None,
) -> list[dict[str, Any]]:
    """The entry log, newest first.

    ``before`` (an event id) continues a listing after that event: a cursor that costs the same
    on page 1,000 as on page 1 and does not shift when new events arrive, unlike ``offset``.
    """
    where, params = ["1 = 1"], []
    if before:
        row = db.execute("SELECT ts, id FROM events WHERE id = ?", [before]).fetchone()
        if row is None:
            raise NotFound(f"no event with id {before}")
        where.append("(ts, id) < (?, ?)")
        params += [row[0], row[1]]
    if since:
        where.append("ts >= ?")
        params.append(to_iso(parse_iso(since)))
    if until:
        where.append("ts < ?")
        params.append(to_iso(parse_iso(until)))
    if kinds:
        where.append(f"kind IN ({', '.join('?' * len(kinds))})")
        params += list(kinds)
    for column, value in (("person_id", person_id), ("door", door)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    rows = db.query(
        f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY ts DESC, id DESC "
        "LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_event_row(r) for r in rows]


def get_event(db: sqlite_utils.Database, event_id: str) -> dict[str, Any]:
    """One event; :class:`NotFound` if there is none with that id."""
    rows = list(db.query("SELECT * FROM events WHERE id = ?", [event_id]))
    if not rows:
        raise NotFound(f"no event {event_id}")
    return _event_row(rows[0])


def _event_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["synced"] = bool(row["synced"])
    row["details"] = json.loads(row["details"]) if row["details"] else None
    return row
