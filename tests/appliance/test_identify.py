"""Identification of real probe photos against an enrolled gallery."""

from __future__ import annotations

import pytest

from appliance import store
from appliance.enroll import load_photo
from appliance.faces import MODEL_NAME
from appliance.match import Gallery
from appliance.settings import load_settings
from tests.appliance.conftest import photos_of

SINGLE_FACE_PROBES = [
    "alex_lacamoire__1.jpg",
    "barack_obama__1.jpg",
    "barack_obama__32bit_rgba.png",
    "barack_obama__480p.jpg",
    "barack_obama__partial_face.jpg",
    "barack_obama__partial_face2.jpg",
    "barack_obama__small.jpg",
    "kit_harington__1.jpg",
]


def _probe_embeddings(engine, probes_dir, name):
    rgb = load_photo((probes_dir / name).read_bytes(), name)
    boxes = engine.detect(rgb, upsample=1, max_side=1024)
    return engine.encode(rgb, boxes)


@pytest.fixture(scope="module")
def full_gallery(enrolled_template):
    db = store.open_db(enrolled_template[0] / "facegate.db")
    gallery = Gallery(store.load_gallery_rows(db, MODEL_NAME))
    db.conn.close()
    return gallery


@pytest.mark.parametrize("probe", SINGLE_FACE_PROBES)
def test_single_face_probe_is_the_right_person(engine, probes_dir, full_gallery, probe):
    settings = load_settings()
    (emb,) = _probe_embeddings(engine, probes_dir, probe)
    m = full_gallery.match(emb, settings.match_threshold)
    expected = probe.split("__")[0]
    assert m.person_id is not None, f"{probe}: nobody under threshold (d={m.distance:.3f})"
    assert full_gallery.persons[m.person_id]["external_id"] == expected
    assert m.margin >= settings.match_margin


@pytest.mark.parametrize(
    "probe, people",
    [
        ("two_faces__kit_harington_rose_leslie.jpg", {"kit_harington", "rose_leslie"}),
        ("multi_face__barack_obama_joe_biden_and_one_more.jpg", {"barack_obama", "joe_biden"}),
    ],
)
def test_group_photo_names_the_known_people(engine, probes_dir, full_gallery, probe, people):
    settings = load_settings()
    found = set()
    for emb in _probe_embeddings(engine, probes_dir, probe):
        m = full_gallery.match(emb, settings.match_threshold)
        if m.person_id:
            found.add(full_gallery.persons[m.person_id]["external_id"])
    assert found == people


def test_people_not_enrolled_are_unknown(engine, tmp_path, people_dir, probes_dir):
    from appliance.enroll import enrol

    settings = load_settings(data_dir=tmp_path / "d")
    db = store.open_db(settings.db_path)
    for person in ("barack_obama", "joe_biden", "lin_manuel_miranda"):
        enrol(db, engine, settings, photos_of(people_dir, person), name=person, external_id=person)
    gallery = Gallery(store.load_gallery_rows(db, MODEL_NAME))
    for probe in ("kit_harington__1.jpg", "alex_lacamoire__1.jpg"):
        (emb,) = _probe_embeddings(engine, probes_dir, probe)
        m = gallery.match(emb, settings.match_threshold)
        assert m.person_id is None, f"{probe} matched {m.best_person_id} at {m.distance:.3f}"
    for emb in _probe_embeddings(engine, probes_dir, "two_faces__kit_harington_rose_leslie.jpg"):
        assert gallery.match(emb, settings.match_threshold).person_id is None
