"""Enrolment over HTTP with the real face models, then identification through the matcher."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from admin_api.state import ApiState
from appliance import store
from appliance.enroll import analyse_photo, load_photo
from appliance.faces import MODEL_NAME
from appliance.match import Gallery
from tests.api.conftest import Api
from tests.api.test_auth import assert_error


def _person(api: Api, name: str = "Upload target") -> str:
    return api.admin.post("/people", json={"name": name}).json()["id"]


def _jpeg(size=(320, 240), colour=(128, 128, 128)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


def _face_count(api: Api, person_id: str) -> int:
    return api.db.execute("SELECT count(*) FROM faces WHERE person_id = ?", [person_id]).fetchone()[
        0
    ]


def test_enrolled_people_are_identified_by_the_appliance_matcher(
    api: Api, enrolled: dict[str, str], probes_dir: Path
) -> None:
    gallery = Gallery(store.load_gallery_rows(api.db, MODEL_NAME))
    state: ApiState = api.app.extensions["facegate"]
    for probe, expected in [
        ("barack_obama__1.jpg", "barack_obama"),
        ("kit_harington__1.jpg", "kit_harington"),
        ("alex_lacamoire__1.jpg", "alex_lacamoire"),
    ]:
        rgb = load_photo((probes_dir / probe).read_bytes(), probe)
        with state.engine_lock:
            embedding, _ = analyse_photo(state.engine(), rgb, api.settings)
        match = gallery.match(embedding, api.settings.match_threshold)
        assert match.person_id == enrolled[expected], (probe, match)
        assert match.margin > 0.05


def test_list_faces(api: Api, enrolled: dict[str, str]) -> None:
    faces = api.viewer.get(f"/people/{enrolled['barack_obama']}/faces").json()["items"]
    assert len(faces) == 3
    assert all(f["model"] == MODEL_NAME and f["quality"] > 0 for f in faces)
    assert_error(api.viewer.get("/people/nobody/faces"), 404)


def test_mixed_upload_enrols_the_good_photos_and_reports_each_file(
    api: Api, enrolled: dict[str, str], probes_dir: Path
) -> None:
    pid = enrolled["kit_harington"]
    before = _face_count(api, pid)
    resp = api.admin.post(
        f"/people/{pid}/faces",
        files=[
            ("photos", ("good.jpg", (probes_dir / "kit_harington__1.jpg").read_bytes())),
            ("photos", ("notes.txt", b"definitely not a photo")),
            ("photos", ("pair.jpg", (probes_dir / "two_faces__two_people.jpg").read_bytes())),
        ],
    )
    assert resp.status_code == 201, resp.text
    results = resp.json()["results"]
    assert [(r["source"], r["accepted"], r["code"]) for r in results] == [
        ("good.jpg", True, None),
        ("notes.txt", False, "not_an_image"),
        ("pair.jpg", False, "several_faces"),
    ]
    assert resp.json()["enrolled"] == 1 and _face_count(api, pid) == before + 1


def test_the_same_photos_again_change_nothing(
    api: Api, enrolled: dict[str, str], probes_dir: Path
) -> None:
    pid = enrolled["alex_lacamoire"]
    photo = ("alex.jpg", (probes_dir / "alex_lacamoire__1.jpg").read_bytes())
    first = api.admin.post(f"/people/{pid}/faces", files=[("photos", photo)])
    assert first.status_code == 201, first.text
    before = _face_count(api, pid)
    again = api.admin.post(f"/people/{pid}/faces", files=[("photos", photo)])
    assert again.status_code == 200, again.text  # nothing new, nothing refused
    (result,) = again.json()["results"]
    assert again.json()["enrolled"] == 0 and result["code"] == "duplicate"
    assert _face_count(api, pid) == before


def test_another_persons_face_is_a_conflict(
    api: Api, enrolled: dict[str, str], probes_dir: Path
) -> None:
    pid = _person(api, "Not Kit Harington")
    photo = (probes_dir / "kit_harington__1.jpg").read_bytes()
    err = assert_error(
        api.admin.post(f"/people/{pid}/faces", files=[("photos", ("k.jpg", photo))]),
        409,
        "matches_other_person",
    )
    assert err["results"][0]["code"] == "matches_other_person"
    assert "Kit Harington" in err["results"][0]["message"]
    assert _face_count(api, pid) == 0


def test_files_that_are_not_images_are_415(api: Api) -> None:
    pid = _person(api)
    resp = api.admin.post(
        f"/people/{pid}/faces",
        files=[
            ("photos", ("a.txt", b"hello")),
            ("photos", ("b.jpg", b"\xff\xd8\xff\xe0 truncated")),
        ],
    )
    err = assert_error(resp, 415, "not_an_image")
    assert [r["code"] for r in err["results"]] == ["not_an_image", "not_an_image"]
    assert _face_count(api, pid) == 0


def test_photos_without_one_usable_face_are_422(api: Api, probes_dir: Path) -> None:
    pid = _person(api)
    resp = api.admin.post(
        f"/people/{pid}/faces",
        files=[
            ("photos", ("grey.jpg", _jpeg())),
            (
                "photos",
                (
                    "many.jpg",
                    (
                        probes_dir / "multi_face__barack_obama_joe_biden_and_one_more.jpg"
                    ).read_bytes(),
                ),
            ),
        ],
    )
    err = assert_error(resp, 422, "no_usable_face")
    assert [r["code"] for r in err["results"]] == ["no_face", "several_faces"]
    assert _face_count(api, pid) == 0


def test_a_decompression_bomb_is_refused(api: Api) -> None:
    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, "PNG")  # 64 Mpx in a few kB
    pid = _person(api)
    resp = api.admin.post(f"/people/{pid}/faces", files=[("photos", ("bomb.png", buf.getvalue()))])
    err = assert_error(resp, 413, "image_too_large")
    assert err["results"][0]["code"] == "decompression_bomb"


@pytest.mark.parametrize("chunked", [False, True])
def test_uploads_over_the_limit_are_413_before_being_read(api: Api, chunked: bool) -> None:
    pid = _person(api)
    limit = int(api.settings.api_max_upload_mb * 1024 * 1024)
    body = b'--x\r\nContent-Disposition: form-data; name="photos"; filename="big.jpg"\r\n\r\n'
    body += b"\0" * (limit + 1000) + b"\r\n--x--\r\n"
    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    data = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    resp = api.admin.post(f"/people/{pid}/faces", data=data, headers=headers)
    err = assert_error(resp, 413, "request_entity_too_large")
    assert str(limit) in err["message"]
    assert _face_count(api, pid) == 0


def test_bad_uploads_are_400_or_404(api: Api) -> None:
    pid = _person(api)
    assert_error(api.admin.post(f"/people/{pid}/faces", json={"photos": []}), 400)
    assert_error(api.admin.post(f"/people/{pid}/faces", files=[("other", ("a.jpg", b"x"))]), 400)
    assert_error(api.admin.post("/people/nobody/faces", files=[("photos", ("a.jpg", b"x"))]), 404)


def test_delete_a_face(api: Api, enrolled: dict[str, str], probes_dir: Path) -> None:
    pid = enrolled["barack_obama"]
    before = _face_count(api, pid)
    resp = api.admin.post(
        f"/people/{pid}/faces",
        files=[
            # a new photo: barack_obama__480p.jpg is a smaller copy of an enrolled one (a duplicate)
            ("photos", ("b.jpg", (probes_dir / "barack_obama__1.jpg").read_bytes()))
        ],
    )
    face_id = resp.json()["results"][0]["face_id"]
    assert _face_count(api, pid) == before + 1
    assert api.admin.delete(f"/people/{pid}/faces/{face_id}").status_code == 200
    assert _face_count(api, pid) == before
    assert_error(api.admin.delete(f"/people/{pid}/faces/{face_id}"), 404)
    actions = [
        e["action"]
        for e in api.admin.get("/audit", params={"actor": "test-admin"}).json()["items"][:2]
    ]
    assert actions == ["face.delete", "enrol"]
