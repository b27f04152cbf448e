"""What the app shares between requests: settings, one store connection per thread, the face engine.

waitress serves requests from a small pool of long-lived threads; each gets its own SQLite
connection (a sqlite3 connection shared by threads would mix their transactions). The face engine
is created once, on the first enrolment, and used under a lock: dlib is not safe to call from
several threads at once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import sqlite_utils
from flask import current_app
from loguru import logger

from admin_api.auth import FailureLimiter, TokenChecker
from appliance import store
from appliance.settings import Settings

if TYPE_CHECKING:
    from appliance.faces import FaceEngine


class ApiState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = TokenChecker()
        self.limiter = FailureLimiter()
        self.engine_lock = threading.Lock()
        self._engine: FaceEngine | None = None
        self._local = threading.local()
        self._all: list[sqlite_utils.Database] = []
        self._all_lock = threading.Lock()
        store.open_db(settings.db_path).conn.close()  # migrate once, before any request

    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = store.open_db(self.settings.db_path, migrate_schema=False)
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    def engine(self) -> FaceEngine:
        """The face engine; call with ``engine_lock`` held."""
        if self._engine is None:
            from appliance.faces import FaceEngine  # loads the dlib models: only when needed

            logger.info("loading the face models for enrolment")
            self._engine = FaceEngine()
        return self._engine

    def close(self) -> None:
        with self._all_lock:
            for db in self._all:
                db.conn.close()
            self._all.clear()


def state() -> ApiState:
    return current_app.extensions["facegate"]


def db() -> sqlite_utils.Database:
    return state().db()
