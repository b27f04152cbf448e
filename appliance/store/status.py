"""Device status: each component's latest health row (appliance, sync, notify)."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.redact import redact
from appliance.store.db import atomic
from appliance.timeutil import to_iso, utc_now


def put_status(db: sqlite_utils.Database, component: str, status: dict[str, Any]) -> None:
    """Publish a component's health row; passwords in URLs (a camera's) are masked first."""
    status = redact(status)
    with atomic(db):
        db.execute(
            "INSERT INTO device_status (component, status, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(component) DO UPDATE SET status = excluded.status, "
            "updated_at = excluded.updated_at",
            [component, json.dumps(status, default=str), to_iso(utc_now())],
        )


def get_status(db: sqlite_utils.Database, component: str) -> dict[str, Any] | None:
    """A component's last published status with its ``updated_at``, or None."""
    row = db.execute(
        "SELECT status, updated_at FROM device_status WHERE component = ?", [component]
    ).fetchone()
    if row is None:
        return None
    return {**json.loads(row[0]), "updated_at": row[1]}
