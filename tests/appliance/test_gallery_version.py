"""The gallery version moves when who may enter changes, and only then.

The door rebuilds its whole in-memory gallery whenever the version moves; sync's bookkeeping
(confirming a push, recording the central change number) must not make it do so.
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance import store
from sync import local


@pytest.fixture
def db(tmp_path):
    db = store.open_db(tmp_path / "store.db")
    with db.conn:
        sid = store.create_schedule(db, "office", [{"days": [0], "start": "08:00", "end": "18:00"}])
        other = store.create_schedule(
            db, "night", [{"days": [0], "start": "20:00", "end": "23:00"}]
        )
        pid = store.create_person(db, "Ada", external_id="B-1", schedule_id=sid)
        store.add_face(db, pid, np.full(128, 0.1, np.float32), model="m")
    db.ids = {"person": pid, "schedule": sid, "other_schedule": other}
    return db


def face_id(db) -> str:
    return db.execute("SELECT id FROM faces").fetchone()[0]


def bumps(db, sql: str, params) -> int:
    before = store.gallery_version(db)
    with db.conn:
        db.execute(sql, params)
    return store.gallery_version(db) - before


@pytest.mark.parametrize(
    "assignment",
    [
        "dirty = 0",
        "central_version = 42",
        "sync_refused_at = updated_at",
        "updated_at = '2030-01-01T00:00:00.000+00:00'",
        "notes = 'prefers the side door'",
        "name = name, active = active",  # written, unchanged (sync's upsert of a same row)
    ],
)
def test_bookkeeping_on_a_person_leaves_the_gallery_alone(db, assignment) -> None:
    pid = db.ids["person"]
    assert bumps(db, f"UPDATE persons SET {assignment} WHERE id = ?", [pid]) == 0


@pytest.mark.parametrize(
    "assignment",
    [
        "name = 'Ada L.'",
        "external_id = 'B-2'",
        "external_id = NULL",
        "active = 0",
        "valid_from = '2030-01-01T00:00:00.000+00:00'",
        "valid_until = '2020-01-01T00:00:00.000+00:00'",
        "schedule_id = NULL",
        "deleted = 1",
    ],
)
def test_a_change_to_who_may_enter_moves_the_version(db, assignment) -> None:
    pid = db.ids["person"]
    assert bumps(db, f"UPDATE persons SET {assignment} WHERE id = ?", [pid]) == 1


def test_a_new_schedule_for_a_person_moves_the_version(db) -> None:
    pid, other = db.ids["person"], db.ids["other_schedule"]
    before = store.gallery_version(db)
    store.update_person(db, pid, schedule_id=other)
    assert store.gallery_version(db) == before + 1


def test_a_confirmed_push_does_not_make_the_door_rebuild(db) -> None:
    pid = db.ids["person"]
    person = store.get_person(db, pid)
    sent = {"updated_at": person["updated_at"], "deleted": False, "faces": [face_id(db)]}
    before = store.gallery_version(db)

    counts = local.record_people_outcome(
        db, [], {pid: sent}, {"accepted": [{"id": pid, "central_version": 7}]}
    )

    assert counts["accepted"] == 1
    assert store.get_person(db, pid)["dirty"] == 0  # the push really was recorded
    assert store.gallery_version(db) == before


def test_face_bookkeeping_is_quiet_but_a_new_embedding_is_not(db) -> None:
    fid = face_id(db)
    assert bumps(db, "UPDATE faces SET dirty = 0, central_version = 3 WHERE id = ?", [fid]) == 0
    assert bumps(db, "UPDATE faces SET quality = 0.9 WHERE id = ?", [fid]) == 0
    new = store.embedding_to_blob(np.full(128, 0.2, np.float32))
    assert bumps(db, "UPDATE faces SET embedding = ? WHERE id = ?", [new, fid]) == 1
    assert bumps(db, "UPDATE faces SET model = 'other' WHERE id = ?", [fid]) == 1


def test_schedule_bookkeeping_is_quiet_but_its_windows_are_not(db) -> None:
    sid = db.ids["schedule"]
    quiet = "UPDATE schedules SET dirty = 0, central_version = 5, name = 'Office' WHERE id = ?"
    assert bumps(db, quiet, [sid]) == 0
    before = store.gallery_version(db)
    store.update_schedule(db, sid, windows=[{"days": [1], "start": "08:00", "end": "12:00"}])
    assert store.gallery_version(db) == before + 1
    store.delete_schedule(db, db.ids["other_schedule"])
    assert store.gallery_version(db) == before + 2
