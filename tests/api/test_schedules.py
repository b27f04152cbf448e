"""Schedules: strict window validation, CRUD, assignment to people, refusal to orphan people."""

from __future__ import annotations

import uuid

import pytest

from appliance import store
from appliance.faces import MODEL_NAME
from tests.api.conftest import Api
from tests.api.test_auth import assert_error

OFFICE = [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:30"}]


def _schedule(api: Api, windows=OFFICE) -> dict:
    resp = api.admin.post(
        "/schedules", json={"name": f"s-{uuid.uuid4().hex[:8]}", "windows": windows}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_create_read_update_list(api: Api) -> None:
    overnight = [
        {"days": [5, 4], "start": "22:00", "end": "06:00"},
        {"days": [6], "start": "00:00", "end": "24:00"},
    ]
    sched = _schedule(api, overnight)
    assert sched["windows"][0]["days"] == [4, 5]  # normalised
    assert api.viewer.get(f"/schedules/{sched['id']}").json() == sched
    assert sched["id"] in [s["id"] for s in api.viewer.get("/schedules").json()["items"]]
    resp = api.admin.patch(f"/schedules/{sched['id']}", json={"windows": OFFICE})
    assert resp.status_code == 200 and resp.json()["windows"] == OFFICE
    assert resp.json()["name"] == sched["name"]


@pytest.mark.parametrize(
    ("window", "fragment"),
    [
        ({"days": [], "start": "08:00", "end": "09:00"}, "days"),
        ({"days": [7], "start": "08:00", "end": "09:00"}, "days"),
        ({"days": [0, 0], "start": "08:00", "end": "09:00"}, "repeat"),
        ({"days": [True], "start": "08:00", "end": "09:00"}, "days"),
        ({"days": ["mon"], "start": "08:00", "end": "09:00"}, "days"),
        ({"days": [0], "start": "8:00", "end": "09:00"}, "start"),
        ({"days": [0], "start": "24:00", "end": "09:00"}, "start"),
        ({"days": [0], "start": "08:00", "end": "24:01"}, "end"),
        ({"days": [0], "start": "08:60", "end": "09:00"}, "start"),
        ({"days": [0], "start": "08:00", "end": "08:00"}, "differ"),
        ({"days": [0], "start": "08:00"}, "end"),
        ({"days": [0], "start": "08:00", "end": "09:00", "tz": "UTC"}, "tz"),
    ],
)
def test_bad_windows_are_refused_with_a_clear_message(api: Api, window, fragment) -> None:
    resp = api.admin.post("/schedules", json={"name": "bad", "windows": [window]})
    err = assert_error(resp, 400, "bad_request")
    assert fragment in err["message"]


def test_windows_must_be_a_list(api: Api) -> None:
    assert_error(api.admin.post("/schedules", json={"name": "x", "windows": "9-5"}), 400)


def test_assign_to_a_person_and_the_gallery_carries_it(api: Api) -> None:
    sched = _schedule(api)
    person = api.admin.post("/people", json={"name": "Shift worker"}).json()
    resp = api.admin.patch(f"/people/{person['id']}", json={"schedule_id": sched["id"]})
    assert resp.status_code == 200 and resp.json()["schedule_id"] == sched["id"]
    rows = store.load_gallery_rows(api.db, MODEL_NAME)
    assert rows.persons[person["id"]]["schedule_windows"] == OFFICE

    # deleting a schedule in use would let the person in at any hour: refused
    err = assert_error(api.admin.delete(f"/schedules/{sched['id']}"), 409, "conflict")
    assert "1 person" in err["message"]
    api.admin.patch(f"/people/{person['id']}", json={"schedule_id": None})
    assert api.admin.delete(f"/schedules/{sched['id']}").status_code == 200
    assert_error(api.viewer.get(f"/schedules/{sched['id']}"), 404)
    assert_error(api.admin.delete(f"/schedules/{sched['id']}"), 404)
    assert_error(api.admin.patch(f"/people/{person['id']}", json={"schedule_id": sched["id"]}), 400)


def test_duplicate_names_conflict(api: Api) -> None:
    sched = _schedule(api)
    assert_error(api.admin.post("/schedules", json={"name": sched["name"], "windows": []}), 409)
    other = _schedule(api)
    assert_error(api.admin.patch(f"/schedules/{other['id']}", json={"name": sched["name"]}), 409)


def test_unknown_schedules_are_404(api: Api) -> None:
    assert_error(api.viewer.get("/schedules/nope"), 404)
    assert_error(api.admin.patch("/schedules/nope", json={"name": "x"}), 404)
