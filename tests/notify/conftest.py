"""Fixtures for the notify tests: a store with events written by the real event writer."""

from __future__ import annotations

import pytest

from appliance import store
from appliance.settings import load_settings


@pytest.fixture
def make_settings(tmp_path):
    def make(**overrides):
        return load_settings(
            data_dir=tmp_path / "data",
            door_timezone="Europe/Berlin",
            door_name="front-door",
            **overrides,
        )

    return make


@pytest.fixture
def db_of():
    opened = []

    def open_(settings):
        db = store.open_db(settings.db_path)
        opened.append(db)
        return db

    yield open_
    for db in opened:
        db.conn.close()
