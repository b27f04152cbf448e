"""DELETE /people/{id} erases the person from the door's files, with the API's and another
process's connections open; the events stay, pseudonymous."""

from __future__ import annotations

from pathlib import Path

from appliance import store
from tests.api.conftest import Api
from tests.erasure import (
    assert_erased,
    embeddings_of,
    events_with_snapshots,
    open_reader,
    unique_name,
)


def test_delete_leaves_nothing_of_the_person(api: Api, people_dir: Path) -> None:
    name = unique_name()
    admin = api.admin
    resp = admin.post("/people", json={"name": name, "notes": f"{name}, night shift"})
    assert resp.status_code == 201, resp.text
    pid = resp.json()["id"]
    folder = people_dir / "kit_harington"
    photos = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted(folder.iterdir())]
    assert admin.post(f"/people/{pid}/faces", files=photos).status_code == 201
    assert admin.patch(f"/people/{pid}", json={"name": name + " Jr"}).status_code == 200
    blobs = embeddings_of(api.db, pid)
    snapshots = events_with_snapshots(api.settings, pid, name, folder / "john1.jpeg")
    event_id = store.list_events(api.db, person_id=pid)[0]["id"]
    assert admin.get(f"/events/{event_id}/snapshot").status_code == 200
    reader = open_reader(api.settings)  # the kiosk's connection, open beside the API's
    try:
        resp = admin.delete(f"/people/{pid}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["faces_deleted"] == len(blobs)

        assert_erased(api.settings.data_dir, name, blobs)
        assert not any(p.exists() for p in snapshots)
        event = api.viewer.get(f"/events/{event_id}").json()
        assert event["person_id"] == pid and event["person_name"] is None
        assert not event["has_snapshot"]
        assert admin.get(f"/events/{event_id}/snapshot").status_code == 404
        audit = admin.get("/audit", params={"limit": 1000}).json()
        mine = [a for a in audit["items"] if a["target"] == pid]
        assert {a["action"] for a in mine} >= {"person.create", "person.update", "person.delete"}
    finally:
        reader.conn.close()


def test_the_door_status_names_the_last_person_only_while_they_exist(api: Api) -> None:
    name = unique_name()
    pid = api.admin.post("/people", json={"name": name}).json()["id"]
    # as the kiosk publishes it: the id, never the name (the row is rewritten every few seconds)
    store.put_status(
        api.db,
        "appliance",
        {"running": True, "last_decision": {"kind": "access_granted", "person_id": pid}},
    )
    last = api.viewer.get("/door/status").json()["appliance"]["last_decision"]
    assert last["person_id"] == pid and last["person_name"] == name
    assert api.admin.delete(f"/people/{pid}").status_code == 200
    last = api.viewer.get("/door/status").json()["appliance"]["last_decision"]
    assert last["person_id"] == pid and last["person_name"] is None
