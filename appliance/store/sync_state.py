"""Sync's small key-value state (the pull cursor) kept in the store beside the rows it tracks."""

from __future__ import annotations

import sqlite_utils

from appliance.store.db import atomic


def get_state(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    """The value stored under ``key``, or ``default``."""
    row = db.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_state(db: sqlite_utils.Database, key: str, value: str | None) -> None:
    """Store ``value`` under ``key`` (replacing any older value)."""
    with atomic(db):
        db.execute(
            "INSERT INTO sync_state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )
