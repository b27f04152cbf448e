"""The door's view of the store: every enrolled face with its person's rules, in one read."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import sqlite_utils

from appliance.match import GalleryRows
from appliance.store.db import gallery_version, read_snapshot
from appliance.store.embeddings import EMBEDDING_DIM


def load_gallery_rows(db: sqlite_utils.Database, model: str) -> GalleryRows:
    """Read the faces of every non-deleted person, with their rules, in one read transaction."""
    with read_snapshot(db):  # version, persons and faces agree
        version = gallery_version(db)
        persons = _gallery_persons(db)
        ids: list[str] = []
        blobs: list[bytes] = []
        for pid, blob in db.execute(
            "SELECT f.person_id, f.embedding FROM faces f JOIN persons p ON p.id = f.person_id "
            "WHERE p.deleted = 0 AND f.model = ? ORDER BY f.person_id",
            [model],
        ):
            ids.append(pid)
            blobs.append(blob)
    emb = (
        np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, EMBEDDING_DIM).astype(np.float32)
        if blobs
        else np.zeros((0, EMBEDDING_DIM), np.float32)
    )
    return GalleryRows(ids, emb, persons, version)


def _gallery_persons(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    persons = {}
    for row in db.query(
        "SELECT p.id, p.name, p.external_id, p.active, p.valid_from, p.valid_until, "
        "p.schedule_id, s.windows AS schedule_windows "
        "FROM persons p LEFT JOIN schedules s ON s.id = p.schedule_id AND s.deleted = 0 "
        "WHERE p.deleted = 0"
    ):
        row = dict(row)
        row["active"] = bool(row["active"])
        if row["schedule_windows"]:
            row["schedule_windows"] = json.loads(row["schedule_windows"])
        elif row["schedule_id"]:
            row["schedule_windows"] = []  # schedule gone: no window, never admit (fail closed)
        else:
            row["schedule_windows"] = None  # no schedule: any time
        persons[row["id"]] = row
    return persons
