"""People over HTTP: create, list (search, active filter, paging), read, update, delete; audit."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from appliance import store
from appliance.faces import MODEL_NAME
from tests.api.conftest import Api
from tests.api.test_auth import assert_error


def _new(api: Api, **fields) -> dict:
    body = {"name": f"Person {uuid.uuid4().hex[:8]}", **fields}
    resp = api.admin.post("/people", json=body)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"].endswith(resp.json()["id"])
    return resp.json()


def test_create_read_update_and_the_appliance_sees_it(api: Api) -> None:
    version = store.gallery_version(api.db)
    person = _new(
        api,
        external_id=f"emp-{uuid.uuid4().hex[:6]}",
        notes="night shift",
        valid_from="2026-01-01T08:00:00+01:00",
    )
    assert person["active"] is True and person["face_count"] == 0
    assert person["valid_from"] == "2026-01-01T07:00:00.000+00:00"  # stored as UTC
    assert store.gallery_version(api.db) > version  # the appliance reloads its gallery

    assert api.viewer.get(f"/people/{person['id']}").json() == person
    resp = api.admin.patch(f"/people/{person['id']}", json={"active": False, "notes": None})
    assert resp.status_code == 200, resp.text
    assert resp.json()["active"] is False and resp.json()["notes"] is None
    assert resp.json()["name"] == person["name"]  # untouched fields stay
    assert api.admin.patch(f"/people/{person['id']}", json={}).json() == resp.json()
    rows = store.load_gallery_rows(api.db, MODEL_NAME)
    assert rows.persons[person["id"]]["active"] is False


def test_list_searches_filters_and_pages(api: Api) -> None:
    tag = uuid.uuid4().hex[:8]
    for i in range(5):
        _new(api, name=f"{tag} member {i}", active=i % 2 == 0)
    page = api.viewer.get("/people", params={"search": tag, "limit": 2}).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    names = [p["name"] for p in page["items"]]
    page2 = api.viewer.get("/people", params={"search": tag, "limit": 2, "offset": 2}).json()
    names += [p["name"] for p in page2["items"]]
    assert names == [f"{tag} member {i}" for i in range(4)]
    active = api.viewer.get("/people", params={"search": tag, "active": "true"}).json()
    assert active["total"] == 3 and all(p["active"] for p in active["items"])
    inactive = api.viewer.get("/people", params={"search": tag, "active": "false"}).json()
    assert inactive["total"] == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 42}, "name"),
        ({"name": "A", "active": "yes"}, "active"),
        ({"name": "A", "colour": "red"}, "colour"),
        ({"name": "A", "valid_from": "next tuesday"}, "valid_from"),
        ({"name": "A", "valid_from": "2026-02-01", "valid_until": "2026-01-01"}, "before"),
        ({"name": "A", "schedule_id": "no-such-schedule"}, "schedule"),
    ],
)
def test_bad_person_bodies_are_refused_with_a_clear_message(api: Api, body, fragment) -> None:
    err = assert_error(api.admin.post("/people", json=body), 400, "bad_request")
    assert fragment in err["message"]


def test_body_that_is_not_a_json_object_is_refused(api: Api) -> None:
    assert_error(api.admin.post("/people", data="not json"), 400)
    assert_error(api.admin.post("/people", json=["a", "list"]), 400)
    assert_error(api.admin.patch(f"/people/{_new(api)['id']}", json={"name": None}), 400)


def test_a_deeply_nested_body_is_400(api: Api) -> None:
    nested = "[" * 100_000 + "]" * 100_000  # json.loads recurses: a RecursionError was a 500
    for body in (nested, '{"name": "x", "notes": ' + nested + "}"):
        err = assert_error(
            api.admin.post("/people", data=body, headers={"Content-Type": "application/json"}),
            400,
            "bad_request",
        )
        assert "nested" in err["message"]
    person = _new(api)["id"]
    assert_error(api.admin.patch(f"/people/{person}", data=nested), 400, "bad_request")


@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
def test_a_validity_date_at_the_edge_of_the_calendar_is_400(api: Api, field: str) -> None:
    body = {"name": "Edge", field: "0001-01-01T00:00:00+14:00"}
    err = assert_error(api.admin.post("/people", json=body), 400, "bad_request")
    assert field in err["message"] and "out of range" in err["message"]


def test_bad_query_parameters_are_refused(api: Api) -> None:
    # each message names the parameter and says what is wrong with it
    cases = {
        "limit": ("many", "integer"),
        "offset": (-1, "greater than or equal to 0"),
        "active": ("maybe", "boolean"),
    }
    for name, (value, problem) in cases.items():
        err = assert_error(api.viewer.get("/people", params={name: value}), 400, "bad_request")
        assert err["message"].startswith(f"{name}: ") and problem in err["message"], err
    err = assert_error(api.viewer.get("/people", params={"limit": 0}), 400)
    assert "limit" in err["message"]


def test_unknown_people_say_which_one(api: Api) -> None:
    missing = str(uuid.uuid4())
    err = assert_error(api.viewer.get(f"/people/{missing}"), 404, "not_found")
    assert missing in err["message"]


def test_unknown_people_are_404(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(api.viewer.get(f"/people/{missing}"), 404, "not_found")
    assert_error(api.admin.patch(f"/people/{missing}", json={"name": "x"}), 404)
    assert_error(api.admin.delete(f"/people/{missing}"), 404)


def test_a_duplicate_external_id_is_a_conflict(api: Api) -> None:
    ext = f"badge-{uuid.uuid4().hex[:6]}"
    _new(api, external_id=ext)
    assert_error(api.admin.post("/people", json={"name": "B", "external_id": ext}), 409, "conflict")
    other = _new(api)
    assert_error(api.admin.patch(f"/people/{other['id']}", json={"external_id": ext}), 409)


def test_flask_errors_keep_the_error_shape(api: Api) -> None:
    resp = api.admin.put("/people")
    assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]
    assert_error(api.admin.get("/no/such/thing"), 404, "not_found")


def test_delete_really_deletes_the_faces(api: Api) -> None:
    person = _new(api)
    with api.db.conn:  # a face as enrolment would store it
        store.add_face(api.db, person["id"], np.ones(128, np.float32), model=MODEL_NAME)
    assert api.viewer.get(f"/people/{person['id']}").json()["face_count"] == 1
    resp = api.admin.delete(f"/people/{person['id']}")
    assert resp.status_code == 200 and resp.json()["faces_deleted"] == 1
    assert (
        api.db.execute("SELECT count(*) FROM faces WHERE person_id = ?", [person["id"]]).fetchone()[
            0
        ]
        == 0
    )
    assert_error(api.viewer.get(f"/people/{person['id']}"), 404)
    assert person["id"] not in store.load_gallery_rows(api.db, MODEL_NAME).persons


def test_the_audit_log_records_who_changed_what(api: Api) -> None:
    alice = api.client(api.token("alice", "admin"))
    person = alice.post("/people", json={"name": "Audited"}).json()
    alice.patch(f"/people/{person['id']}", json={"notes": "moved desks"})
    entries = api.admin.get("/audit", params={"actor": "alice"}).json()["items"]
    assert entries[0]["details"] == {"notes": "moved desks"}
    alice.delete(f"/people/{person['id']}")
    entries = api.admin.get("/audit", params={"actor": "alice"}).json()["items"]
    assert [(e["action"], e["target"]) for e in entries] == [
        ("person.delete", person["id"]),
        ("person.update", person["id"]),
        ("person.create", person["id"]),
    ]
    # erasure: what changed stays on record, what it said about the person does not
    assert entries[1]["details"] == {"notes": "(erased)"}
    assert_error(api.viewer.get("/audit"), 403)
