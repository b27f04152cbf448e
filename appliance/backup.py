"""Backup and restore of the store.

``python -m appliance backup PATH`` copies the store with SQLite's online backup API: the copy is
one consistent snapshot even while the kiosk, the API and sync keep writing (WAL readers are not
blocked, and a writer between two pages makes the API restart from a consistent state).

``python -m appliance restore PATH`` puts a backup back. It refuses while anything uses the store
(the kiosk's lock, any process holding the database open, an active Facegate unit), checks the
backup's integrity and schema first, and swaps the file in atomically; the current store is kept
beside it as ``facegate.db.before-restore``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from appliance import instance_lock
from appliance.migrations import MIGRATIONS

UNITS = (
    "facegate-appliance.service",
    "facegate-api.service",
    "facegate-sync.service",
    "facegate-ui.service",
)


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass
class BackupInfo:
    path: Path
    bytes: int
    schema_version: int
    events: int
    persons: int


def _integrity(conn: sqlite3.Connection) -> str:
    return conn.execute("PRAGMA integrity_check").fetchone()[0]


def _describe(path: Path) -> BackupInfo:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        check = _integrity(conn)
        if check != "ok":
            raise BackupError(f"{path} fails SQLite's integrity check: {check}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "events", "persons"} <= tables:
            raise BackupError(f"{path} is not a Facegate store (no meta/events/persons tables)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return BackupInfo(
            path=path,
            bytes=path.stat().st_size,
            schema_version=int(row[0]) if row else 0,
            events=conn.execute("SELECT count(*) FROM events").fetchone()[0],
            persons=conn.execute("SELECT count(*) FROM persons").fetchone()[0],
        )
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from None
    finally:
        conn.close()


def backup(db_path: Path, dest: Path) -> BackupInfo:
    """Copy the live store to ``dest`` (owner-only), consistent while others write."""
    db_path, dest = Path(db_path), Path(dest)
    if not db_path.is_file():
        raise BackupError(f"no store at {db_path}: nothing to back up (check FACEGATE_DATA_DIR)")
    if dest.is_dir():
        dest = dest / "facegate-backup.db"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # faces live in it
    os.close(fd)
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0)
    out = sqlite3.connect(str(tmp))
    try:
        # the whole database in one step: a read transaction, so a consistent snapshot that
        # never blocks the WAL writer (a paged copy would restart on every write)
        src.backup(out, pages=-1)
        out.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
    except sqlite3.Error as exc:
        out.close()
        tmp.unlink(missing_ok=True)
        raise BackupError(f"backup failed: {exc}") from None
    finally:
        src.close()
    out.close()
    info = _describe(tmp)
    os.replace(tmp, dest)
    info.path = dest
    logger.bind(path=str(dest), bytes=info.bytes, events=info.events).info("store backed up")
    return info


def users_of_store(db_path: Path) -> list[str]:
    """Who is using the store now: the kiosk's lock, processes holding it open, active units."""
    db_path = Path(db_path).resolve()
    users: list[str] = []
    try:
        instance_lock.check_free(db_path.parent)
    except instance_lock.DataFolderBusy as busy:
        holder = f"pid {busy.pid}" if busy.pid else "pid unknown"
        users.append(f"the kiosk ({holder}, holds {busy.path})")
    names = {str(db_path), f"{db_path}-wal", f"{db_path}-shm"}
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            fds = list((proc / "fd").iterdir())
            held = any(os.readlink(fd) in names for fd in fds)
        except OSError:
            continue  # gone, or not ours to see
        if held:
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                cmd = "?"
            users.append(f"process {proc.name} ({cmd[:80]})")
    if Path("/run/systemd/system").is_dir():
        for unit in UNITS:
            r = subprocess.run(
                ["systemctl", "is-active", "--quiet", unit], check=False, capture_output=True
            )
            if r.returncode == 0:
                users.append(f"the unit {unit}")
    return users


def restore(backup_path: Path, db_path: Path) -> BackupInfo:
    """Put ``backup_path`` back as the store; refuses while anything uses the store."""
    backup_path, db_path = Path(backup_path), Path(db_path)
    if not backup_path.is_file():
        raise BackupError(f"{backup_path}: file not found")
    users = users_of_store(db_path)
    if users:
        raise BackupError(
            "the store is in use by "
            + "; ".join(users)
            + ". Stop them first (sudo systemctl stop facegate.target), then restore again"
        )
    info = _describe(backup_path)
    if info.schema_version > len(MIGRATIONS):
        raise BackupError(
            f"{backup_path} has schema {info.schema_version}, newer than this program knows "
            f"({len(MIGRATIONS)}): upgrade the software first"
        )
    db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = db_path.with_name(db_path.name + ".restoring")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    out = sqlite3.connect(str(tmp))
    try:
        src.backup(out)
        out.execute("PRAGMA journal_mode = WAL")
        check = _integrity(out)
    finally:
        src.close()
        out.close()
    if check != "ok":
        tmp.unlink(missing_ok=True)
        raise BackupError(f"the restored copy fails the integrity check: {check}")
    if db_path.exists():
        # fold the WAL into the old file so the kept copy is whole, then set it aside
        try:
            old = sqlite3.connect(str(db_path))
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            old.close()
        except sqlite3.DatabaseError as exc:  # a broken store is what restores are for
            logger.warning("the store being replaced is unreadable ({}); kept as it is", exc)
        os.replace(db_path, db_path.with_name(db_path.name + ".before-restore"))
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, db_path)
    from appliance import store

    store.open_db(db_path).conn.close()  # run any migrations the backup's schema misses
    logger.bind(path=str(backup_path), events=info.events, persons=info.persons).info(
        "store restored"
    )
    return _describe(db_path)
