"""Commands from the admin API to the appliance (unlock, reload), carried out at most once."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.store.db import atomic
from appliance.store.errors import NotFound
from appliance.timeutil import to_iso, utc_now


def enqueue_command(
    db: sqlite_utils.Database, kind: str, args: dict | None = None, requested_by: str | None = None
) -> int:
    """Queue a command for the appliance; returns its id."""
    with atomic(db):
        cur = db.execute(
            "INSERT INTO commands (kind, args, requested_by, created_at) VALUES (?, ?, ?, ?)",
            [kind, json.dumps(args or {}), requested_by, to_iso(utc_now())],
        )
    return int(cur.lastrowid)


def pending_commands(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Commands not yet taken, oldest first."""
    rows = db.query("SELECT * FROM commands WHERE status = 'pending' ORDER BY id")
    return [{**r, "args": json.loads(r["args"])} for r in rows]


def finish_command(
    db: sqlite_utils.Database, command_id: int, status: str, result: str | None = None
) -> None:
    """Record a command's outcome (done or failed)."""
    with atomic(db):
        db.execute(
            "UPDATE commands SET status = ?, result = ?, done_at = ? WHERE id = ?",
            [status, result, to_iso(utc_now()), command_id],
        )


def claim_command(db: sqlite_utils.Database, command_id: int) -> bool:
    """Take a pending command for carrying out; False if it expired (or was taken) meanwhile.

    The admin API expires a command it stopped waiting for; claiming first means an unlock the
    admin was told was cancelled never happens late.
    """
    with atomic(db):
        cur = db.execute(
            "UPDATE commands SET status = 'running' WHERE id = ? AND status = 'pending'",
            [command_id],
        )
    return cur.rowcount == 1


def expire_command(db: sqlite_utils.Database, command_id: int) -> bool:
    """Mark a still-pending command expired so it never runs late; False if it was taken."""
    with atomic(db):
        cur = db.execute(
            "UPDATE commands SET status = 'expired', done_at = ? "
            "WHERE id = ? AND status = 'pending'",
            [to_iso(utc_now()), command_id],
        )
    return cur.rowcount == 1


def get_command(db: sqlite_utils.Database, command_id: int) -> dict[str, Any]:
    """One command; :class:`NotFound` if there is none with that id."""
    rows = list(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))
    if not rows:
        raise NotFound(f"no command {command_id}")
    return {**rows[0], "args": json.loads(rows[0]["args"])}
