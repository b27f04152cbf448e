"""Backup while the store is being written, and restore that refuses while anything uses it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading

import pytest

from appliance import instance_lock, store
from appliance.backup import BackupError, backup, restore, users_of_store
from appliance.cli import main
from tests.conftest import REPO_ROOT

WRITER = """
import sys, time
from appliance import store
db = store.open_db(sys.argv[1])
print("open", flush=True)
n = 0
while True:
    store.insert_events(db, [{"door": "d", "kind": "access_denied", "reason": "w%d" % n}])
    n += 1
"""


def _events(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM events")}
    finally:
        conn.close()


def test_backup_taken_mid_write_restores_whole(tmp_path):
    live = tmp_path / "live" / "facegate.db"
    db = store.open_db(live)
    pid = store.create_person(db, "Ada")
    db.conn.commit()
    stop = threading.Event()
    written: list[int] = []

    def write():
        wdb = store.open_db(live, migrate_schema=False)
        n = 0
        while not stop.is_set():
            store.insert_events(
                wdb, [{"door": "d", "kind": "access_granted", "person_id": pid} for _ in range(5)]
            )
            n += 5
            written.append(n)
        wdb.conn.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while len(written) < 20:  # the writer is well under way
            stop.wait(0.01)
        before = written[-1]
        (tmp_path / "backups").mkdir()
        info = backup(live, tmp_path / "backups")
        after = written[-1]
    finally:
        stop.set()
        thread.join()
    assert info.path == tmp_path / "backups" / "facegate-backup.db"
    assert info.path.stat().st_mode & 0o777 == 0o600
    assert info.persons == 1
    assert before <= info.events <= after + 5  # a snapshot from within the writes
    assert info.events % 5 == 0  # whole transactions only

    target = tmp_path / "restored" / "facegate.db"
    restored = restore(info.path, target)
    assert restored.events == info.events and restored.persons == 1
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _events(target) <= _events(live)


def test_restore_refuses_while_the_kiosk_or_another_process_uses_the_store(tmp_path):
    live = tmp_path / "data" / "facegate.db"
    store.open_db(live).conn.close()
    saved = backup(live, tmp_path / "b.db").path

    held = instance_lock.acquire(live.parent)  # what a running kiosk holds
    with held, pytest.raises(BackupError, match=f"the kiosk \\(pid {os.getpid()}"):
        restore(saved, live)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(live)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "open"
        with pytest.raises(BackupError, match=f"process {proc.pid}"):
            restore(saved, live)
        # and a backup of that busy store, restored once it stopped, is whole
        mid = backup(live, tmp_path / "mid.db")
    finally:
        proc.kill()
        proc.wait()
    assert users_of_store(live) == []
    assert restore(mid.path, live).events == mid.events
    assert (live.parent / "facegate.db.before-restore").exists()


def test_restore_refuses_what_is_not_a_good_store(tmp_path):
    live = tmp_path / "data" / "facegate.db"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not a readable SQLite"):
        restore(junk, live)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(BackupError, match="not a Facegate store"):
        restore(other, live)
    newer = tmp_path / "newer.db"
    store.open_db(newer).execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(BackupError, match="upgrade the software"):
        restore(newer, live)
    assert not live.exists()


def test_cli_backup_and_restore(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEGATE_DATA_DIR", str(tmp_path / "data"))
    db = store.open_db(tmp_path / "data" / "facegate.db")
    store.insert_events(db, [{"door": "d", "kind": "access_denied"}])
    db.conn.close()
    assert main(["backup", str(tmp_path / "b.db")]) == 0
    assert "1 event(s)" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "b.db")]) == 0
    assert "restored" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "missing.db")]) == 1
    assert "file not found" in capsys.readouterr().err


def test_restore_replaces_a_corrupt_store(tmp_path):
    live = tmp_path / "data" / "facegate.db"
    db = store.open_db(live)
    store.create_person(db, "Ada")
    db.conn.commit()
    db.conn.close()
    saved = backup(live, tmp_path / "b.db")
    live.write_bytes(b"SQLite format 3\0" + b"\xff" * 4096)  # the SD card ate it
    assert restore(saved.path, live).persons == 1
    assert (live.parent / "facegate.db.before-restore").read_bytes().startswith(b"SQLite")
