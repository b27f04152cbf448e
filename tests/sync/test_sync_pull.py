"""People come down: added, changed and deleted centrally, as the door sees them."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest

from appliance import store
from appliance.match import Gallery
from sync import local
from tests.erasure import (
    assert_erased,
    embeddings_of,
    events_with_snapshots,
    open_reader,
    unique_name,
)


def _match(door, probe: np.ndarray, model: str) -> str | None:
    gallery = Gallery(store.load_gallery_rows(door.db, model))
    return gallery.match(probe, 0.5).person_id


def test_person_added_centrally_is_recognised_at_the_door(central, make_door, face_vectors):
    door = make_door(central)
    before = store.gallery_version(door.db)
    assert _match(door, face_vectors.obama_probe, face_vectors.model) is None

    badge = f"E-{uuid.uuid4().hex[:8]}"  # unique: a real project keeps earlier runs' people
    pid = central.add_person(
        door.site, "Barack Obama", [face_vectors.obama], face_vectors.model, external_id=badge
    )
    report = door.engine.pull()

    assert report["applied"] == 2  # the person and the face
    assert store.gallery_version(door.db) > before  # the door reloads its gallery
    assert _match(door, face_vectors.obama_probe, face_vectors.model) == pid
    assert _match(door, face_vectors.biden, face_vectors.model) is None
    person = store.get_person(door.db, pid)
    assert person["name"] == "Barack Obama" and person["external_id"] == badge
    assert person["face_count"] == 1 and not person["dirty"]


def test_person_deleted_centrally_cannot_enter_and_their_faces_are_gone(
    central, make_door, face_vectors
):
    door = make_door(central)
    pid = central.add_person(
        door.site, "Barack Obama", [face_vectors.obama, face_vectors.obama], face_vectors.model
    )
    door.engine.pull()
    assert _match(door, face_vectors.obama_probe, face_vectors.model) == pid

    central.delete_person(pid)
    door.engine.pull()

    assert _match(door, face_vectors.obama_probe, face_vectors.model) is None
    assert door.db.execute("SELECT count(*) FROM persons WHERE id = ?", [pid]).fetchone()[0] == 0
    assert (
        door.db.execute("SELECT count(*) FROM faces WHERE person_id = ?", [pid]).fetchone()[0] == 0
    )
    # the centre keeps a tombstone without biometric data
    assert all(f["deleted"] and f["embedding"] is None for f in central.faces(pid))


def test_other_sites_people_never_reach_the_door(central, make_door, face_vectors):
    door = make_door(central)
    other = make_door(central)
    mine = central.add_person(door.site, "Obama", [face_vectors.obama], face_vectors.model)
    theirs = central.add_person(other.site, "Biden", [face_vectors.biden], face_vectors.model)
    door.engine.pull()
    other.engine.pull()
    assert [p["id"] for p in store.list_persons(door.db)[0]] == [mine]
    assert [p["id"] for p in store.list_persons(other.db)[0]] == [theirs]


def test_revoking_site_access_removes_the_person(gateway_central, make_door, face_vectors):
    door = make_door(gateway_central)
    pid = gateway_central.add_person(door.site, "Obama", [face_vectors.obama], face_vectors.model)
    door.engine.pull()
    assert _match(door, face_vectors.obama_probe, face_vectors.model) == pid
    gateway_central.revoke_access(pid, door.site)
    door.engine.pull()
    assert _match(door, face_vectors.obama_probe, face_vectors.model) is None
    assert store.list_persons(door.db)[1] == 0


def test_schedules_come_down_and_a_person_may_arrive_first(
    gateway_central, make_door, face_vectors
):
    door = make_door(gateway_central)
    site_id = gateway_central.site_id(door.site)
    sid = str(
        gateway_central.sql(
            "insert into schedules (site_id, name, windows) values (%s, 'office', "
            '\'[{"days": [0,1,2,3,4], "start": "08:00", "end": "18:00"}]\') returning id',
            [site_id],
        )[0]["id"]
    )
    pid = gateway_central.add_person(
        door.site, "Obama", [face_vectors.obama], face_vectors.model, schedule_id=sid
    )
    # the schedule changes after the person: the person's change comes down first
    gateway_central.sql("update schedules set name = 'office hours' where id = %s", [sid])
    door.engine.pull()
    rows = store.load_gallery_rows(door.db, face_vectors.model)
    assert rows.persons[pid]["schedule_windows"] == [
        {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}
    ]
    assert [s["name"] for s in store.list_schedules(door.db)] == ["office hours"]

    # deleting a schedule still in use leaves a schedule that never opens, not "any time"
    gateway_central.sql("delete from schedules where id = %s", [sid])
    door.engine.pull()
    rows = store.load_gallery_rows(door.db, face_vectors.model)
    assert rows.persons[pid]["schedule_windows"] == []


def test_a_malformed_row_coming_down_is_quarantined_without_blocking(
    central, make_door, face_vectors
):
    door = make_door(central, batch=3)
    first = central.add_person(door.site, "Obama", [face_vectors.obama], face_vectors.model)
    bad = central.add_raw_face(first, ["NaN"] * 128, face_vectors.model)  # a buggy admin tool
    later = [
        central.add_person(door.site, f"Biden {i}", [face_vectors.biden], face_vectors.model)
        for i in range(3)
    ]

    report = door.engine.pull()

    assert report["malformed"] == 1
    assert {p["id"] for p in store.list_persons(door.db)[0]} == {first, *later}
    assert door.db.execute("SELECT count(*) FROM faces WHERE id = ?", [bad]).fetchone()[0] == 0
    q = list(door.db.query("SELECT * FROM sync_quarantine"))
    assert [(r["direction"], r["kind"], r["row_id"]) for r in q] == [("pull", "face", bad)]
    assert "finite" in q[0]["error"]
    status = store.get_status(door.db, "sync")
    assert status["quarantined"] == {"pull": 1}
    # the cursor moved past it: the next pull does not stumble on it again
    assert door.engine.pull()["malformed"] == 0


def test_each_page_commits_with_its_cursor(gateway_central, make_door, face_vectors, monkeypatch):
    door = make_door(gateway_central, batch=4)
    ids = [
        gateway_central.add_person(door.site, f"P{i}", [face_vectors.biden], face_vectors.model)
        for i in range(6)
    ]  # 12 rows: 3 pages
    real_apply = local.apply_page
    pages = []

    def crash_on_second_page(db, changes, next_cursor):
        pages.append(next_cursor)
        if len(pages) == 2:
            raise RuntimeError("power cut while applying page 2")
        return real_apply(db, changes, next_cursor)

    monkeypatch.setattr(local, "apply_page", crash_on_second_page)
    with pytest.raises(RuntimeError):
        door.engine.pull()
    assert local.pull_cursor(door.db) == pages[0]  # page 1 committed, page 2 not at all
    assert door.db.execute("SELECT count(*) FROM persons").fetchone()[0] == 2
    assert store.get_status(door.db, "sync")["last_error"]["step"] == "pull"

    monkeypatch.setattr(local, "apply_page", real_apply)
    report = door.engine.pull()
    assert report["applied"] == 8
    assert {p["id"] for p in store.list_persons(door.db)[0]} == set(ids)
    assert door.db.execute("SELECT count(*) FROM faces").fetchone()[0] == 6


def test_changed_at_both_ends_the_central_copy_wins_and_is_logged(central, make_door, face_vectors):
    door = make_door(central)
    pid = central.add_person(door.site, "Barack Obama", [face_vectors.obama], face_vectors.model)
    door.engine.pull()

    store.update_person(door.db, pid, name="Local edit", notes="door")
    central.update_person(pid, name="Central edit")
    door.engine.run_cycle()

    person = store.get_person(door.db, pid)
    assert person["name"] == "Central edit" and not person["dirty"]
    assert central.person(pid)["name"] == "Central edit"
    conflicts = list(
        door.db.query(
            "SELECT * FROM audit_log WHERE action = 'sync_conflict' AND target = ?", [pid]
        )
    )
    assert len(conflicts) == 1 and conflicts[0]["actor"] == "sync"


def test_pulled_embeddings_are_bit_exact(gateway_central, make_door, face_vectors):
    door = make_door(gateway_central)
    pid = gateway_central.add_person(door.site, "Obama", [face_vectors.obama], face_vectors.model)
    door.engine.pull()
    rows = store.load_gallery_rows(door.db, face_vectors.model)
    assert rows.person_ids == [pid]
    assert np.array_equal(rows.embeddings[0], face_vectors.obama)
    assert not any(math.isnan(v) for v in rows.embeddings[0])


def test_a_change_still_in_flight_cannot_be_skipped(gateway_central, make_door, face_vectors):
    """Change numbers become visible in order: a later writer waits for the earlier one, so a
    door never moves its cursor past a number that commits afterwards."""
    import threading

    import psycopg

    door = make_door(gateway_central)
    site_id = gateway_central.site_id(door.site)
    slow = psycopg.connect(gateway_central.dsn)
    slow.execute("insert into persons (name) values ('slow writer') returning id")
    slow_id = None
    try:

        def fast_writer():
            gateway_central.add_person(
                door.site, "fast writer", [face_vectors.biden], face_vectors.model
            )

        fast = threading.Thread(target=fast_writer)
        fast.start()
        waiting = 0
        for _ in range(100):  # the fast writer queues on the change-number lock
            waiting = gateway_central.sql(
                "select count(*) as n from pg_locks where locktype = 'advisory' and not granted"
            )[0]["n"]
            if waiting:
                break
            fast.join(0.05)
        assert waiting == 1 and fast.is_alive()
        door.engine.pull()
        assert store.list_persons(door.db)[1] == 0
        slow_id = slow.execute("select id from persons where name = 'slow writer'").fetchone()[0]
        slow.execute(
            "insert into person_sites (person_id, site_id) values (%s, %s)", [slow_id, site_id]
        )
        slow.commit()
        fast.join(10)
    finally:
        slow.close()
    door.engine.pull()
    assert {p["name"] for p in store.list_persons(door.db)[0]} == {"slow writer", "fast writer"}


def test_a_central_delete_leaves_nothing_of_the_person_at_the_door(
    central, make_door, face_vectors, people_dir
):
    name = unique_name()
    door = make_door(central)
    pid = central.add_person(
        door.site,
        name,
        [face_vectors.obama, face_vectors.obama_probe],
        face_vectors.model,
        notes=f"{name} visits on Mondays",
    )
    door.engine.pull()
    assert store.get_person(door.db, pid)["name"] == name
    blobs = embeddings_of(door.db, pid)
    snapshots = events_with_snapshots(
        door.settings, pid, name, people_dir / "barack_obama" / "obama.jpg"
    )
    reader = open_reader(door.settings)  # the kiosk's connection stays open
    try:
        central.delete_person(pid)
        assert door.engine.pull()["deleted"] >= 1

        assert_erased(door.settings.data_dir, name, blobs)
        assert not any(p.exists() for p in snapshots)
        rows = store.list_events(reader, person_id=pid)
        assert len(rows) == 3 and all(e["person_name"] is None for e in rows)
    finally:
        reader.conn.close()
