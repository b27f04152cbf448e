"""Checks that a removed person leaves nothing behind in a door's files (shared by the CLI, API
and sync tests): their name and embedding bytes are searched in every byte of the data folder.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import cv2
import sqlite_utils

from appliance import store
from appliance.events import EventWriter
from appliance.settings import Settings


def unique_name() -> str:
    """A name found nowhere else (ASCII: stored as is in text and in JSON)."""
    return f"Zed Erasable {uuid.uuid4().hex[:12]}"


def embeddings_of(db: sqlite_utils.Database, person_id: str) -> list[bytes]:
    """The person's embeddings as stored (128 little-endian float32, 512 bytes each)."""
    blobs = [
        r[0] for r in db.execute("SELECT embedding FROM faces WHERE person_id = ?", [person_id])
    ]
    assert blobs, "the person has no faces to erase"
    return blobs


def events_with_snapshots(
    settings: Settings, person_id: str, name: str, photo: Path, n: int = 3
) -> list[Path]:
    """The door's event writer logs ``n`` grants of the person with a face crop each."""
    crop = cv2.imread(str(photo))
    writer = EventWriter(settings.db_path, settings.door_name, snapshot_dir=settings.snapshot_dir)
    writer.start()
    for i in range(n):
        writer.emit(
            "access_granted",
            person_id=person_id,
            person_name=name,
            reason="match",
            track_id=i,
            crop=crop,
        )
    writer.close()
    db = store.open_db(settings.db_path, migrate_schema=False)
    try:
        paths = [
            Path(r[0])
            for r in db.execute(
                "SELECT snapshot_path FROM events WHERE person_id = ? AND person_name = ?",
                [person_id, name],
            )
        ]
    finally:
        db.conn.close()
    assert len(paths) == n and all(p.is_file() for p in paths)
    return paths


def open_reader(settings: Settings) -> sqlite_utils.Database:
    """Another process's connection (the kiosk's, the API's): open, having read, now idle."""
    reader = store.open_db(settings.db_path, migrate_schema=False)
    reader.execute("SELECT count(*) FROM persons").fetchall()
    reader.execute("SELECT count(*) FROM events").fetchall()
    return reader


def assert_erased(data_dir: Path, name: str, embeddings: list[bytes]) -> None:
    """Neither the name nor any stored embedding (not even its first 32 bytes) in any file."""
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    assert any(p.name.endswith(".db") for p in files)
    needles = {"name": name.encode()} | {
        f"embedding {i}": blob[:32] for i, blob in enumerate(embeddings)
    }
    found = [
        f"{what} in {path.relative_to(data_dir)}"
        for path in files
        for what, needle in needles.items()
        if needle in path.read_bytes()
    ]
    assert not found, found
