"""`persons remove` erases: no name, embedding or face crop of the person left in the data folder,
even with the kiosk's connection open; their events stay, without name or snapshot."""

from __future__ import annotations

import json
import sqlite3

from appliance import store
from appliance.enroll import enrol
from appliance.settings import load_settings
from tests.appliance.conftest import photos_of
from tests.conftest import run_cli
from tests.erasure import (
    assert_erased,
    embeddings_of,
    events_with_snapshots,
    open_reader,
    unique_name,
)


def test_persons_remove_leaves_nothing_of_the_person(tmp_path, engine, people_dir) -> None:
    settings = load_settings(data_dir=tmp_path / "data", pin_factory="mock")
    name = unique_name()
    db = store.open_db(settings.db_path)
    pid = enrol(db, engine, settings, photos_of(people_dir, "kit_harington"), name=name).person_id
    store.update_person(
        db,
        pid,
        notes=f"{name} has a key too",
        audit_entry=("cli", "person.update", {"name": name, "notes": f"{name} has a key too"}),
    )
    other = enrol(db, engine, settings, photos_of(people_dir, "rose_leslie"), name="Rose").person_id
    blobs = embeddings_of(db, pid)
    snapshots = events_with_snapshots(
        settings, pid, name, people_dir / "kit_harington" / "john1.jpeg"
    )
    events_with_snapshots(settings, other, "Rose", people_dir / "rose_leslie" / "img1.jpg", n=1)
    db.conn.close()
    reader = open_reader(settings)  # the kiosk's connection stays open throughout
    try:
        r = run_cli(
            "persons",
            "remove",
            pid,
            "--json",
            env={"FACEGATE_DATA_DIR": str(settings.data_dir), "FACEGATE_PIN_FACTORY": "mock"},
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["faces_deleted"] == len(blobs)

        assert_erased(settings.data_dir, name, blobs)
        assert not any(p.exists() for p in snapshots)
        # the entry log keeps the events, pseudonymous; others' events are untouched
        rows = store.list_events(reader, person_id=pid)
        assert len(rows) == 3
        assert all(e["person_name"] is None and e["snapshot_path"] is None for e in rows)
        rose = store.list_events(reader, person_id=other)
        assert rose[0]["person_name"] == "Rose" and rose[0]["snapshot_path"]
        audit = [a for a in store.list_audit(reader) if a["target"] == pid]
        assert [a["action"] for a in audit][:2] == ["remove", "person.update"]
        assert audit[1]["details"] == {"name": "(erased)", "notes": "(erased)"}
    finally:
        reader.conn.close()


def test_every_connection_deletes_securely_whatever_the_sqlite_build(tmp_path, monkeypatch):
    """Some builds default secure_delete on (Debian's), others off: the store sets it itself."""
    real_connect = sqlite3.connect

    def connect_as_a_default_build(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")  # SQLite's own default
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect_as_a_default_build)
    for migrate_schema in (True, False):
        db = store.open_db(tmp_path / "data" / "facegate.db", migrate_schema=migrate_schema)
        assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
        db.conn.close()


def test_a_reader_in_a_transaction_holds_the_wal_until_it_ends(tmp_path) -> None:
    """What really happens with a reader mid-transaction: the checkpoint cannot truncate the
    WAL (the name stays in it); once the reader is done, the next checkpoint removes it."""
    settings = load_settings(data_dir=tmp_path / "data", pin_factory="mock")
    db = store.open_db(settings.db_path)
    db.conn.execute("PRAGMA busy_timeout = 100")  # do not wait 10 s for the reader
    name = unique_name()
    with db.conn:
        pid = store.create_person(db, name)
    reader = open_reader(settings)
    reader.conn.execute("BEGIN")
    reader.execute("SELECT count(*) FROM persons").fetchall()  # holds a snapshot
    store.delete_person(db, pid)
    wal = settings.db_path.with_name(settings.db_path.name + "-wal")
    assert name.encode() in wal.read_bytes()  # held back by the reader
    reader.conn.execute("COMMIT")
    assert store.truncate_wal(db)
    assert_erased(settings.data_dir, name, [])
    reader.conn.close()
    db.conn.close()


def test_quarantined_sync_rows_and_conflict_records_lose_the_person(tmp_path) -> None:
    from sync import local

    settings = load_settings(data_dir=tmp_path / "data", pin_factory="mock")
    db = store.open_db(settings.db_path)
    name = unique_name()
    with db.conn:
        pid = store.create_person(db, name, external_id="badge-77")
        other = store.create_person(db, "Someone Else")
        # a face of theirs pulled malformed, and a conflict that named them on another person
        local.quarantine(db, "pull", "face", "face-1", "bad", {"row": {"person_id": pid}})
        store.audit(
            db, "sync", "sync_conflict", other, {"external_id": "badge-77", "central_person": pid}
        )
        store.audit(db, "cli", "person.update", pid, {"name": name, "active": True})
    store.delete_person(db, pid)
    quarantined = db.execute("SELECT payload FROM sync_quarantine").fetchall()
    assert quarantined == [(None,)]
    audit = {(a["target"], a["action"]): a["details"] for a in store.list_audit(db)}
    assert audit[(other, "sync_conflict")] == {"external_id": "(erased)", "central_person": pid}
    assert audit[(pid, "person.update")] == {"name": "(erased)", "active": True}
    assert_erased(settings.data_dir, name, [])
    db.conn.close()
