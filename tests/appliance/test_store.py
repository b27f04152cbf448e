"""The local store: migrations, the gallery version, real deletion, concurrent writers."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest
import sqlite_utils

from appliance import migrations, store


def test_migrations_on_an_empty_database(tmp_path):
    db = store.open_db(tmp_path / "new.db")
    assert migrations.schema_version(db) == len(migrations.MIGRATIONS)
    expected = {
        "persons",
        "faces",
        "schedules",
        "events",
        "commands",
        "device_status",
        "api_tokens",
        "audit_log",
        "sync_state",
        "meta",
    }
    assert expected <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_on_an_older_database_keep_its_rows(tmp_path):
    path = tmp_path / "old.db"
    raw = sqlite_utils.Database(sqlite3.connect(path))
    # a database as the first release left it: schema 1 only, with a person and an event
    raw.conn.executescript(migrations.MIGRATIONS[0])
    raw.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    raw.execute(
        "INSERT INTO persons (id, name, created_at, updated_at) VALUES ('p1', 'Old', 't', 't')"
    )
    raw.execute(
        "INSERT INTO events (id, ts, door, kind) VALUES ('e1', '2026-01-01T00:00:00.000+00:00', "
        "'d', 'access_granted')"
    )
    raw.conn.commit()
    raw.conn.close()
    db = store.open_db(path)
    assert migrations.schema_version(db) == len(migrations.MIGRATIONS)
    assert store.get_person(db, "p1")["name"] == "Old"
    assert [e["id"] for e in store.list_events(db)] == ["e1"]


def test_a_newer_database_is_refused(tmp_path):
    db = store.open_db(tmp_path / "x.db")
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.conn.commit()
    with pytest.raises(RuntimeError, match="newer"):
        store.open_db(tmp_path / "x.db")


def test_any_change_to_people_bumps_the_gallery_version(tmp_path):
    db = store.open_db(tmp_path / "g.db")
    versions = [store.gallery_version(db)]
    with db.conn:
        pid = store.create_person(db, "A")
    versions.append(store.gallery_version(db))
    with db.conn:
        store.add_face(db, pid, np.ones(128, np.float32), model="m")
    versions.append(store.gallery_version(db))
    store.update_person(db, pid, active=False)
    versions.append(store.gallery_version(db))
    store.delete_person(db, pid)
    versions.append(store.gallery_version(db))
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_delete_person_really_deletes_faces_and_personal_data(tmp_path):
    db = store.open_db(tmp_path / "d.db")
    with db.conn:
        pid = store.create_person(db, "Secret Name", external_id="X1", notes="badge 7")
        store.add_face(db, pid, np.ones(128, np.float32), model="m")
    assert store.delete_person(db, pid) == 1
    assert db.execute("SELECT count(*) FROM faces").fetchone()[0] == 0
    row = db.execute("SELECT name, external_id, notes, deleted FROM persons").fetchone()
    assert row == ("", None, None, 1)  # only a tombstone for sync is left
    with pytest.raises(store.NotFound):
        store.get_person(db, pid)


def test_embedding_blob_round_trip_and_validation():
    v = np.random.default_rng(1).normal(size=128).astype(np.float32)
    assert np.array_equal(store.blob_to_embedding(store.embedding_to_blob(v)), v)
    with pytest.raises(ValueError):
        store.embedding_to_blob(np.ones(64))
    with pytest.raises(ValueError):
        store.embedding_to_blob(np.full(128, np.nan))


def test_concurrent_writers_never_see_database_locked(tmp_path):
    path = tmp_path / "c.db"
    store.open_db(path).conn.close()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        db = store.open_db(path)
        try:
            for i in range(200):
                store.insert_events(db, [{"door": "d", "kind": "access_denied", "reason": str(n)}])
                if i % 20 == 0:
                    with db.conn:
                        store.create_person(db, f"p{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            db.conn.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = store.open_db(path)
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 800


def test_processes_starting_together_migrate_once(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    path = tmp_path / "race.db"
    code = "import sys; from appliance import store; store.open_db(sys.argv[1])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path)],
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert migrations.schema_version(store.open_db(path)) == len(migrations.MIGRATIONS)


def test_the_store_is_readable_by_its_owner_only(tmp_path):
    import stat

    db = store.open_db(tmp_path / "private" / "facegate.db")
    store.insert_events(db, [{"door": "d", "kind": "access_denied"}])
    for name in ("facegate.db", "facegate.db-wal"):
        mode = stat.S_IMODE((tmp_path / "private" / name).stat().st_mode)
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}"
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700


def test_a_change_and_its_audit_row_commit_together(tmp_path):
    db = store.open_db(tmp_path / "a.db")
    with db.conn:
        a = store.create_person(db, "A", external_id="E1")
        b = store.create_person(db, "B", external_id="E2")
    store.update_person(db, a, name="Ann", audit_entry=("alice", "person.update", {"name": "Ann"}))
    with pytest.raises(sqlite3.IntegrityError):  # a badge number that is taken: nothing happens
        store.update_person(db, b, external_id="E1", audit_entry=("bob", "person.update", None))
    rows = db.execute("SELECT actor, action, target FROM audit_log").fetchall()
    assert rows == [("alice", "person.update", a)]
    store.delete_person(db, b, audit_entry=("bob", "person.delete", None))
    last = db.execute("SELECT actor, details FROM audit_log ORDER BY id DESC").fetchone()
    assert last == ("bob", '{"faces_deleted": 0}')
