"""The connection: one SQLite file (WAL) shared by the appliance, the admin API and sync.

Each process opens its own connection with :func:`open_db`; transactions are short so that the
door loop never waits on an admin or on sync.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
from loguru import logger

from appliance.migrations import migrate


def new_id() -> str:
    """A fresh row id: a random uuid, so ids made at the door and centrally never collide."""
    return str(uuid.uuid4())


def open_db(path: Path | str, *, migrate_schema: bool = True) -> sqlite_utils.Database:
    """Open the store with the pragmas every process relies on, migrating it to the current schema.

    WAL lets readers run beside the one writer; the busy timeout makes a writer wait for another
    instead of failing with "database is locked".
    """
    path = Path(path)
    # people's faces (as embeddings) and movements live here: readable by the service user only
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    is_new = not path.exists()
    conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
    if is_new:
        os.chmod(path, 0o600)  # SQLite gives the -wal and -shm files the same mode
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # deleted rows (a removed person's faces and name) are overwritten with zeros, not merely
    # marked free: set here, not left to how the platform's SQLite was built
    conn.execute("PRAGMA secure_delete = ON")
    db = sqlite_utils.Database(conn)
    if migrate_schema:
        migrate(db)
    return db


@contextmanager
def atomic(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction: the block's writes commit together, or none on an exception.

    Inside a caller's transaction this is sqlite-utils' own :meth:`~sqlite_utils.Database.atomic`
    (a savepoint), so a store function joins the caller's transaction instead of committing it
    early as ``with db.conn:`` would. At the top level it begins with ``BEGIN IMMEDIATE``, not
    sqlite-utils' plain ``BEGIN``: a deferred transaction that reads first (sqlite-utils reads
    the table's schema before an insert) cannot be upgraded to a writer once another process has
    committed, and fails with "database is locked" at once, whatever the busy timeout; taking
    the write lock first makes it wait its turn instead.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        db.rollback()  # a no-op if the error already ended the transaction
        raise


@contextmanager
def read_snapshot(db: sqlite_utils.Database) -> Iterator[None]:
    """One read transaction: in WAL mode every SELECT inside sees the same committed state.

    (sqlite3 begins transactions only before writes, so a plain ``with conn:`` would not.)
    """
    if db.conn.in_transaction:  # already inside the caller's transaction
        yield
        return
    db.conn.execute("BEGIN")
    try:
        yield
    finally:
        db.conn.execute("COMMIT")


def gallery_version(db: sqlite_utils.Database) -> int:
    """The number the triggers bump on every change to who may enter (the door polls it)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'gallery_version'").fetchone()
    return int(row[0]) if row else 0


def truncate_wal(db: sqlite_utils.Database) -> bool:
    """Copy the write-ahead log into the database and truncate it to zero bytes.

    After an erasure the WAL still holds the old pages (the name, the embeddings) until a
    checkpoint overwrites them; with ``secure_delete`` the database's own copy is zeroed. A
    reader in the middle of a transaction holds the checkpoint back: it waits for it (the busy
    timeout) and, if still blocked, says so in the log and returns False; the next erasure or
    :func:`truncate_wal` finishes the job. Returns True when the WAL is empty.
    """
    if db.conn.in_transaction:  # inside the caller's transaction: its commit comes first
        return False
    busy, log_frames, done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy or log_frames != done:
        logger.bind(frames=log_frames, checkpointed=done).warning(
            "write-ahead log not truncated (a reader was busy): erased data stays in it until "
            "the next checkpoint"
        )
        return False
    return True
