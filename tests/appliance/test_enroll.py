"""Enrolment from real photos: every fixture person goes in, every bad photo is refused."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from appliance import store
from appliance.enroll import PhotoRefused, analyse_photo, enrol, load_photo
from appliance.settings import load_settings
from tests.appliance.conftest import ALL_PEOPLE, photos_of


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_every_fixture_person_is_enrolled(enrolled_template, people_dir):
    data, results = enrolled_template
    for person in ALL_PEOPLE:
        res = results[person]
        n_photos = len(list((people_dir / person).iterdir()))
        assert res.created and res.enrolled == n_photos, (person, res.results)
    db = store.open_db(data / "facegate.db")
    persons, total = store.list_persons(db)
    assert total == len(ALL_PEOPLE)
    assert {p["external_id"] for p in persons} == set(ALL_PEOPLE)
    # embeddings only: no photo is kept unless a setting asks for it
    assert not (data / "photos").exists()
    assert db.execute("SELECT count(*) FROM faces WHERE photo_path IS NOT NULL").fetchone()[0] == 0


@pytest.mark.parametrize(
    "probe, code",
    [
        ("two_faces__kit_harington_rose_leslie.jpg", "several_faces"),
        ("two_faces__two_people.jpg", "several_faces"),
        ("multi_face__barack_obama_joe_biden_and_one_more.jpg", "several_faces"),
    ],
)
def test_group_photos_are_refused(engine, settings, probes_dir, probe, code):
    rgb = load_photo((probes_dir / probe).read_bytes(), probe)
    with pytest.raises(PhotoRefused) as exc:
        analyse_photo(engine, rgb, settings)
    assert exc.value.code == code


def test_rgba_png_is_accepted(engine, settings, probes_dir):
    data = (probes_dir / "barack_obama__32bit_rgba.png").read_bytes()
    assert Image.open(io.BytesIO(data)).mode == "RGBA"
    embedding, quality = analyse_photo(engine, load_photo(data, "rgba"), settings)
    assert embedding.shape == (128,) and quality > 0


def test_text_file_named_jpg_is_refused(settings, tmp_path):
    with pytest.raises(PhotoRefused) as exc:
        load_photo(b"this is not a photo\n", "notes.jpg")
    assert exc.value.code == "not_an_image"


def test_truncated_jpeg_is_refused(people_dir):
    data = (people_dir / "barack_obama" / "obama.jpg").read_bytes()
    with pytest.raises(PhotoRefused) as exc:
        load_photo(data[: len(data) // 2], "half.jpg")
    assert exc.value.code == "not_an_image"
    assert "truncated" in str(exc.value)


def test_decompression_bomb_is_refused():
    buf = io.BytesIO()
    Image.new("L", (9000, 9000)).save(buf, "PNG")  # 81 Mpx in a few kB
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(PhotoRefused) as exc:
        load_photo(buf.getvalue(), "bomb.png")
    assert exc.value.code == "decompression_bomb"


def test_oversized_file_is_refused_before_decoding():
    with pytest.raises(PhotoRefused) as exc:
        load_photo(b"\xff" * 2000, "big.jpg", max_bytes=1000)
    assert exc.value.code == "too_large"


def test_photo_without_face_is_refused(engine, settings):
    rng = np.random.default_rng(0)
    noise = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    with pytest.raises(PhotoRefused) as exc:
        analyse_photo(engine, load_photo(_jpeg(noise), "noise.jpg"), settings)
    assert exc.value.code == "no_face"


def test_small_face_is_refused(engine, settings, people_dir):
    rgb = load_photo((people_dir / "barack_obama" / "obama.jpg").read_bytes(), "o")
    tiny = cv2.resize(rgb, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)  # face ~62 px
    with pytest.raises(PhotoRefused) as exc:
        analyse_photo(engine, tiny, settings)
    assert exc.value.code == "face_too_small"


def test_blurred_face_is_refused(engine, settings, people_dir):
    rgb = load_photo((people_dir / "joe_biden" / "biden2.jpg").read_bytes(), "b")
    blurred = cv2.GaussianBlur(rgb, (0, 0), 6)
    with pytest.raises(PhotoRefused) as exc:
        analyse_photo(engine, blurred, settings)
    assert exc.value.code in ("face_too_blurry", "no_face")


def test_refused_only_call_stores_nothing(engine, settings, probes_dir):
    db = store.open_db(settings.db_path)
    version = store.gallery_version(db)
    probe = probes_dir / "two_faces__two_people.jpg"
    res = enrol(
        db, engine, settings, [("x.jpg", b"nope"), (str(probe), probe.read_bytes())], name="Nobody"
    )
    assert res.person_id is None and res.enrolled == 0
    assert [r.code for r in res.results] == ["not_an_image", "several_faces"]
    assert db.execute("SELECT count(*) FROM persons").fetchone()[0] == 0
    assert store.gallery_version(db) == version


def test_mixed_call_keeps_good_photos_and_names_bad_ones(engine, settings, people_dir):
    db = store.open_db(settings.db_path)
    photos = photos_of(people_dir, "kit_harington") + [("broken.jpg", b"\x00\x01")]
    res = enrol(db, engine, settings, photos, name="Kit", external_id="kit")
    assert res.enrolled == 2
    refused = [r for r in res.results if not r.accepted]
    assert [(r.source, r.code) for r in refused] == [("broken.jpg", "not_an_image")]
    assert store.get_person(db, res.person_id)["face_count"] == 2


def test_external_id_adds_faces_to_the_same_person(engine, settings, people_dir):
    db = store.open_db(settings.db_path)
    first, second = photos_of(people_dir, "barack_obama")[:2]
    a = enrol(db, engine, settings, [first], name="Barack", external_id="emp-1")
    b = enrol(db, engine, settings, [second], external_id="emp-1")
    assert a.created and not b.created and a.person_id == b.person_id
    assert store.get_person(db, a.person_id)["face_count"] == 2


def test_enrolment_photos_kept_only_when_asked(engine, tmp_path, people_dir):
    s = load_settings(data_dir=tmp_path / "d", store_enrol_photos=True, pin_factory="mock")
    db = store.open_db(s.db_path)
    res = enrol(db, engine, s, photos_of(people_dir, "rose_leslie"), name="Rose")
    photos = list(s.photo_dir.iterdir())
    assert len(photos) == 2
    n = store.delete_person(db, res.person_id)
    assert n == 2
    assert list(s.photo_dir.iterdir()) == []  # deletion really deletes the photos too
    assert db.execute("SELECT count(*) FROM faces").fetchone()[0] == 0


def test_same_face_under_another_name_is_refused(engine, settings, people_dir):
    db = store.open_db(settings.db_path)
    first = enrol(db, engine, settings, photos_of(people_dir, "joe_biden")[:1], name="Joe")
    again = enrol(db, engine, settings, photos_of(people_dir, "joe_biden")[1:], name="Joseph")
    assert first.enrolled == 1 and again.enrolled == 0 and again.person_id is None
    (res,) = again.results
    assert res.code == "matches_other_person" and "Joe" in res.message
    # the same person may of course get more faces
    more = enrol(
        db, engine, settings, photos_of(people_dir, "joe_biden")[1:], person_id=first.person_id
    )
    assert more.enrolled == 1


def test_the_same_photo_twice_is_skipped_with_a_note(engine, settings, people_dir):
    from appliance.enroll import ALL_ACCEPTED, DUPLICATE, SOME_REFUSED

    db = store.open_db(settings.db_path)
    first, second = photos_of(people_dir, "rose_leslie")
    res = enrol(
        db,
        engine,
        settings,
        [first, second, ("copy.jpg", first[1])],
        name="Rose",
        external_id="rose",
    )
    assert res.enrolled == 2 and res.verdict == ALL_ACCEPTED
    skipped = res.results[2]
    assert skipped.code == DUPLICATE and "same file as" in skipped.message
    version = store.gallery_version(db)
    # again, and a re-saved smaller copy (other bytes, practically the same face): nothing new
    rgb = load_photo(first[1], first[0])
    small = _jpeg(cv2.resize(rgb, None, fx=0.8, fy=0.8))
    again = enrol(db, engine, settings, [first, second, ("resaved.jpg", small)], external_id="rose")
    assert again.enrolled == 0 and again.verdict == ALL_ACCEPTED
    assert {r.code for r in again.results} == {DUPLICATE}
    assert "practically identical" in again.results[2].message
    assert store.get_person(db, res.person_id)["face_count"] == 2
    assert store.gallery_version(db) == version  # nothing written
    mixed = enrol(db, engine, settings, [first, ("broken.jpg", b"\x00")], external_id="rose")
    assert mixed.verdict == SOME_REFUSED
