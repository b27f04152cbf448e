"""Fixtures for the door's own tests: an enrolled gallery built once and copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance import store
from appliance.enroll import enrol
from appliance.settings import load_settings

ALL_PEOPLE = [
    "alex_lacamoire",
    "barack_obama",
    "joe_biden",
    "kit_harington",
    "lin_manuel_miranda",
    "rose_leslie",
]


def photos_of(people_dir: Path, person: str) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in sorted((people_dir / person).iterdir())]


@pytest.fixture(scope="session")
def enrolled_template(tmp_path_factory, engine, people_dir):
    """A data folder with every person of fixtures/people enrolled (external id = folder name)."""
    data = tmp_path_factory.mktemp("enrolled") / "data"
    settings = load_settings(data_dir=data, pin_factory="mock")
    db = store.open_db(settings.db_path)
    results = {}
    for person in ALL_PEOPLE:
        results[person] = enrol(
            db, engine, settings, photos_of(people_dir, person), name=person, external_id=person
        )
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return data, results


def copy_data(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


@pytest.fixture
def enrolled_settings(enrolled_template, tmp_path):
    """Settings on a private copy of the fully enrolled data folder."""
    data = copy_data(enrolled_template[0], tmp_path / "enrolled-data")
    return load_settings(data_dir=data, pin_factory="mock")


def person_ids(settings) -> dict[str, str]:
    db = store.open_db(settings.db_path)
    try:
        persons, _ = store.list_persons(db, limit=1000)
        return {p["external_id"]: p["id"] for p in persons}
    finally:
        db.conn.close()


@pytest.fixture(scope="session")
def clip_frames(clip_path):
    """(fps, frames) of the fixture clip, decoded once for the session."""
    import cv2

    cap = cv2.VideoCapture(str(clip_path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    cap.release()
    assert len(frames) > 250
    return fps, frames
