"""``python -m appliance calibrate`` on the real fixture photos: a report, never a change."""

from __future__ import annotations

import json
import shutil

import pytest

from appliance import store
from appliance.enroll import enrol
from appliance.settings import load_settings
from tests.appliance.conftest import copy_data, photos_of
from tests.conftest import run_cli

ENROLLED = ["alex_lacamoire", "barack_obama", "kit_harington", "lin_manuel_miranda"]
STRANGERS = ["joe_biden", "rose_leslie"]


@pytest.fixture(scope="module")
def four_enrolled(tmp_path_factory, engine, people_dir):
    data = tmp_path_factory.mktemp("calibrate") / "data"
    settings = load_settings(data_dir=data, pin_factory="mock")
    db = store.open_db(settings.db_path)
    for person in ENROLLED:
        enrol(db, engine, settings, photos_of(people_dir, person), name=person, external_id=person)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return data


@pytest.fixture
def env(four_enrolled, tmp_path):
    data = copy_data(four_enrolled, tmp_path / "data")
    return {"FACEGATE_DATA_DIR": str(data), "FACEGATE_PIN_FACTORY": "mock"}


def test_gallery_report_names_each_persons_nearest_neighbour(env):
    r = run_cli("calibrate", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    names = {p["name"]: p for p in rep["persons"]}
    assert set(names) == set(ENROLLED)
    for p in names.values():
        assert p["nearest_person"] in ENROLLED and p["nearest_person"] != p["name"]
        assert 0.5 < p["nearest_distance"] < 1.2
    assert names["barack_obama"]["faces"] == 3 and names["barack_obama"]["spread"] > 0
    assert names["barack_obama"]["advice"] == ""
    assert names["lin_manuel_miranda"]["advice"] == "enrol 2 more photo(s)"
    assert rep["lookalikes"] == [] and rep["sweep"] == []


def test_probes_and_strangers_give_a_safe_threshold_and_change_nothing(
    env, tmp_path, probes_dir, people_dir
):
    probes = tmp_path / "probes"
    for person in ("alex_lacamoire", "barack_obama", "kit_harington"):
        (probes / person).mkdir(parents=True)
        shutil.copy(probes_dir / f"{person}__1.jpg", probes / person)
    (probes / "nobody_we_know").mkdir()
    strangers = tmp_path / "strangers"
    for person in STRANGERS:
        shutil.copytree(people_dir / person, strangers / person)
    db_path = tmp_path / "data" / "facegate.db"
    before = sorted(p.name for p in (tmp_path / "data").iterdir())

    r = run_cli(
        "calibrate", "--probes", str(probes), "--strangers", str(strangers), "--json", env=env
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["unmatched_probe_folders"] == ["nobody_we_know"]
    at = {row["threshold"]: row for row in rep["sweep"]}
    assert at[0.55]["genuine"] == 3 and at[0.55]["strangers"] == 4
    best = rep["recommended_threshold"]
    assert best is not None and at[best]["false_accepts"] == 0
    assert at[best]["genuine_accepted"] == 3
    assert at[0.3]["genuine_accepted"] < 3  # too strict a threshold refuses the genuine probes
    # read-only: no settings file written, the data folder holds what it held
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == before
    assert not (tmp_path / "data" / ".env").exists() and db_path.parent.is_dir()

    table = run_cli("calibrate", "--probes", str(probes), "--strangers", str(strangers), env=env)
    assert "recommendation: threshold" in table.stdout and "nothing was changed" in table.stdout
    assert "nobody_we_know" in table.stderr


def test_calibrate_refuses_an_empty_gallery_and_a_missing_folder(tmp_path, env):
    empty = {"FACEGATE_DATA_DIR": str(tmp_path / "empty"), "FACEGATE_PIN_FACTORY": "mock"}
    r = run_cli("calibrate", env=empty)
    assert r.returncode == 1 and "nobody is enrolled" in r.stderr
    r = run_cli("calibrate", "--probes", str(tmp_path / "missing"), env=env)
    assert r.returncode == 2 and "is not a folder" in r.stderr
