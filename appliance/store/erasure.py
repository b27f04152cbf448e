"""Erasing a person: the traces they leave in rows that outlive them, and the files to delete."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import sqlite_utils

#: Keys of an audit row's details that hold what a person is called or said about them.
PERSONAL_AUDIT_KEYS = ("name", "external_id", "notes")
#: What an erased value reads as in the audit log.
ERASED = "(erased)"


def erase_person_traces(db: sqlite_utils.Database, person_id: str) -> list[str]:
    """Remove a person's name and pictures from the rows that outlive them (no transaction of
    its own: join the deletion's). Returns the files to delete once it commits.

    Their events stay, pseudonymous: the entry log keeps that the door opened for person id X at
    that time (the id is a random uuid that names nobody once the person row is gone), but not
    the name or the face crop. Audit rows about them keep which fields changed, but the name,
    external id and notes they recorded read ``(erased)``; a quarantined sync payload about
    them is dropped.
    """
    files = [
        r[0]
        for r in db.execute(
            "SELECT photo_path FROM faces WHERE person_id = ? AND photo_path IS NOT NULL "
            "UNION ALL SELECT snapshot_path FROM events "
            "WHERE person_id = ? AND snapshot_path IS NOT NULL",
            [person_id, person_id],
        )
    ]
    db.execute(
        "UPDATE events SET person_name = NULL, snapshot_path = NULL WHERE person_id = ? "
        "AND (person_name IS NOT NULL OR snapshot_path IS NOT NULL)",
        [person_id],
    )
    _erase_audit_details(db, person_id)
    db.execute(  # a refused push of the person, or a malformed face of theirs pulled
        "UPDATE sync_quarantine SET payload = NULL "
        "WHERE payload IS NOT NULL AND (row_id = ? OR instr(payload, ?) > 0)",
        [person_id, person_id],
    )
    db.execute(
        "UPDATE device_status SET status = json_set(status, '$.last_decision.person_name', NULL) "
        "WHERE CASE WHEN json_valid(status) "
        "THEN json_extract(status, '$.last_decision.person_id') END = ?",
        [person_id],
    )
    return files


def _erase_audit_details(db: sqlite_utils.Database, person_id: str) -> None:
    for row_id, details in db.execute(
        "SELECT id, details FROM audit_log WHERE details IS NOT NULL "
        "AND (target = ? OR instr(details, ?) > 0)",  # a sync conflict names them in details
        [person_id, person_id],
    ).fetchall():
        kept = json.loads(details)
        if isinstance(kept, dict) and any(kept.get(k) for k in PERSONAL_AUDIT_KEYS):
            # which fields changed stays on record; what they said does not
            kept = {k: ERASED if k in PERSONAL_AUDIT_KEYS and v else v for k, v in kept.items()}
            db.execute("UPDATE audit_log SET details = ? WHERE id = ?", [json.dumps(kept), row_id])


def remove_files(paths: Iterable[str]) -> None:
    """Delete files a committed change no longer refers to (photos, snapshots)."""
    for path in paths:
        Path(path).unlink(missing_ok=True)
