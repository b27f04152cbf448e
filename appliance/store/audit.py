"""The audit log: who changed what, written in the same transaction as the change."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.timeutil import to_iso, utc_now

#: Who made a change and what to call it in the audit log: (actor, action, details). Passed to
#: the functions that change people and schedules so the audit row is written in the same
#: transaction as the change: there is never a change without its record, nor the reverse.
Audit = tuple[str, str, dict | None]


def audit(
    db: sqlite_utils.Database,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict | None = None,
) -> None:
    """Record who changed what (no transaction of its own: join the caller's)."""
    db.execute(
        "INSERT INTO audit_log (ts, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
        [to_iso(utc_now()), actor, action, target, json.dumps(details) if details else None],
    )


def record(db: sqlite_utils.Database, audit_entry: Audit | None, target: str) -> None:
    """Write ``audit_entry`` about ``target`` if there is one (inside the caller's transaction)."""
    if audit_entry is not None:
        actor, action, details = audit_entry
        audit(db, actor, action, target, details)


def list_audit(
    db: sqlite_utils.Database, *, actor: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """The audit log, newest first."""
    where, params = ("WHERE actor = ?", [actor]) if actor else ("", [])
    rows = db.query(
        f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [{**r, "details": json.loads(r["details"]) if r["details"] else None} for r in rows]
