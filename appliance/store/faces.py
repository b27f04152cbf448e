"""Faces: a person's enrolled embeddings (and, if kept, their photos)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from appliance.store.audit import Audit, record
from appliance.store.db import atomic, new_id, truncate_wal
from appliance.store.embeddings import embedding_to_blob
from appliance.store.errors import NotFound
from appliance.timeutil import to_iso, utc_now


def add_face(
    db: sqlite_utils.Database,
    person_id: str,
    embedding: np.ndarray,
    *,
    model: str,
    quality: float | None = None,
    photo_path: str | None = None,
    face_id: str | None = None,
) -> str:
    """Insert one face (no transaction of its own)."""
    fid = face_id or new_id()
    db["faces"].insert(
        {
            "id": fid,
            "person_id": person_id,
            "embedding": embedding_to_blob(embedding),
            "model": model,
            "quality": quality,
            "photo_path": photo_path,
            "created_at": to_iso(utc_now()),
            "dirty": 1,
        }
    )
    return fid


def list_faces(db: sqlite_utils.Database, person_id: str) -> list[dict[str, Any]]:
    """A person's faces, oldest first, without the embeddings."""
    return list(
        db.query(
            "SELECT id, person_id, model, quality, created_at, photo_path IS NOT NULL AS has_photo "
            "FROM faces WHERE person_id = ? ORDER BY created_at",
            [person_id],
        )
    )


def delete_face(
    db: sqlite_utils.Database, person_id: str, face_id: str, *, audit_entry: Audit | None = None
) -> None:
    """Delete one face and its photo; the person becomes dirty (its faces are part of it)."""
    row = db.execute(
        "SELECT photo_path FROM faces WHERE id = ? AND person_id = ?", [face_id, person_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"no face {face_id} for person {person_id}")
    with atomic(db):
        db.execute("DELETE FROM faces WHERE id = ?", [face_id])  # zeroed: secure_delete
        # the person changed for sync: its set of faces is part of it
        db.execute(
            "UPDATE persons SET dirty = 1, updated_at = ? WHERE id = ?",
            [to_iso(utc_now()), person_id],
        )
        record(db, audit_entry, person_id)
    if row[0]:
        Path(row[0]).unlink(missing_ok=True)
    truncate_wal(db)  # the embedding's old page image leaves the WAL too
