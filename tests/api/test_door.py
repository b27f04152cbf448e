"""Door status, the live frame, and manual unlock through the commands table."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from admin_api.routes.door import UNLOCK_WAIT_S
from appliance import store
from tests.api.conftest import Api
from tests.api.test_auth import assert_error


@contextmanager
def appliance_answering(api: Api, status: str, result: str) -> Iterator[list[dict]]:
    """A thread that plays the appliance: polls pending commands and finishes them."""
    stop = threading.Event()
    seen: list[dict] = []
    db = store.open_db(api.settings.db_path, migrate_schema=False)

    def run() -> None:
        while not stop.wait(0.05):
            for cmd in store.pending_commands(db):
                seen.append(cmd)
                store.finish_command(db, cmd["id"], status, result)

    thread = threading.Thread(target=run, name="fake-appliance")
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()
        db.conn.close()


def test_status_reports_the_appliance_and_sync(api: Api) -> None:
    store.put_status(
        api.db,
        "appliance",
        {
            "locked": True,
            "door_open": False,
            "camera_ok": True,
            "fps": 12.5,
            "gallery_size": 14,
            "last_decision": {"kind": "access_granted"},
        },
    )
    store.put_status(api.db, "sync", {"last_push": "2026-11-25T10:00:00Z", "backlog": 0})
    store.put_status(
        api.db,
        "appliance",
        {
            **store.get_status(api.db, "appliance"),
            "camera_source": "rtsp://admin:s3cret@10.0.0.5/s",
        },
    )
    body = api.viewer.get("/door/status").json()
    assert body["appliance_online"] is True and body["appliance"]["fps"] == 12.5
    assert body["appliance"]["locked"] is True and body["appliance"]["camera_ok"] is True
    assert body["sync"]["backlog"] == 0
    assert body["gallery_version"] == store.gallery_version(api.db)
    assert body["door"] == api.settings.door_name
    assert body["appliance"]["camera_source"] == "rtsp://***@10.0.0.5/s"  # viewers read this


def test_a_stale_status_row_means_offline(api: Api) -> None:
    store.put_status(api.db, "appliance", {"locked": True})
    with api.db.conn:
        api.db.execute(
            "UPDATE device_status SET updated_at = '2020-01-01T00:00:00.000+00:00' "
            "WHERE component = 'appliance'"
        )
    body = api.viewer.get("/door/status").json()
    assert body["appliance_online"] is False and body["status_age_s"] > 3600


def _poll(api: Api, accepted) -> dict:
    """Follow an accepted unlock to its final status, as the console does."""
    assert accepted.status_code == 202, accepted.text
    command = accepted.json()
    assert accepted.headers["Location"].endswith(f"/door/commands/{command['command_id']}")
    for _ in range(200):
        if command["status"] not in ("pending", "running"):
            return command
        time.sleep(0.05)  # the appliance is another process: polling is the protocol
        command = api.admin.get(f"/door/commands/{command['command_id']}").json()
    raise AssertionError(f"the unlock never finished: {command}")


def test_unlock_carried_out(api: Api) -> None:
    with appliance_answering(api, "done", "relay pulsed 3.0 s") as seen:
        command = _poll(api, api.admin.post("/door/unlock"))
    assert command["status"] == "done" and command["result"] == "relay pulsed 3.0 s"
    assert [(c["kind"], c["args"], c["requested_by"]) for c in seen] == [
        ("unlock", {}, "test-admin")
    ]
    assert api.admin.get("/audit").json()["items"][0]["action"] == "door.unlock"


def test_unlock_answers_at_once_without_holding_a_server_thread(api: Api) -> None:
    # nobody answers: each request still returns at once, so more clicks than the server has
    # threads (4) never starve the API
    started = time.monotonic()
    answers = [api.admin.post("/door/unlock") for _ in range(6)]
    assert all(a.status_code == 202 and a.json()["status"] == "pending" for a in answers)
    assert time.monotonic() - started < UNLOCK_WAIT_S
    assert api.viewer.get("/health").status_code == 200
    for a in answers:
        store.expire_command(api.db, a.json()["command_id"])


def test_unlock_failed_by_the_appliance_is_reported(api: Api) -> None:
    with appliance_answering(api, "failed", "door controller in alarm"):
        command = _poll(api, api.admin.post("/door/unlock"))
    assert command["status"] == "failed" and command["result"] == "door controller in alarm"


def test_unlock_nobody_answers_expires_and_never_runs_late(api: Api) -> None:
    accepted = api.admin.post("/door/unlock")
    command = _poll(api, accepted)
    assert command["status"] == "expired" and "did not answer" in command["result"]
    assert store.get_command(api.db, command["command_id"])["status"] == "expired"
    assert store.pending_commands(api.db) == []  # an appliance that wakes up finds nothing


def test_unknown_command_is_404(api: Api) -> None:
    assert_error(api.admin.get("/door/commands/999999"), 404, "not_found")


def test_unlock_is_admin_only(api: Api) -> None:
    assert_error(api.viewer.post("/door/unlock"), 403, "forbidden")
    assert store.pending_commands(api.db) == []


def test_latest_frame(api: Api) -> None:
    frame = api.settings.run_dir / "latest.jpg"
    frame.unlink(missing_ok=True)
    assert_error(api.viewer.get("/door/frame"), 404, "not_found")
    frame.parent.mkdir(parents=True, exist_ok=True)
    tmp = frame.with_suffix(".tmp")
    tmp.write_bytes(b"\xff\xd8frame-1\xff\xd9")
    tmp.replace(frame)  # as the appliance does: atomic
    resp = api.viewer.get("/door/frame")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/jpeg"
    assert resp.content == b"\xff\xd8frame-1\xff\xd9"
    assert resp.headers["Cache-Control"] == "no-store"
