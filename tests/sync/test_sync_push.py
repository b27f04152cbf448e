"""Events and people go up: exactly once, whatever the network and the process do."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest

from appliance import store
from appliance.match import Gallery
from sync import local
from tests.supabase_gateway import Fault

PUSH = "/rest/v1/rpc/push_events"


def add_events(door, n: int, **overrides) -> list[str]:
    rows = [
        {
            "id": str(uuid.uuid4()),
            "ts": store.to_iso(store.utc_now()),
            "door": door.name,
            "kind": "grant",
            "person_id": str(uuid.uuid4()),
            "person_name": "Someone",
            "distance": 0.31,
            "reason": "match",
            "details": {"votes": 3},
            **overrides,
        }
        for _ in range(n)
    ]
    store.insert_events(door.db, rows)
    return [r["id"] for r in rows]


def unsynced(door) -> int:
    return door.db.execute("SELECT count(*) FROM events WHERE synced = 0").fetchone()[0]


def test_events_reach_the_centre_once_through_drops_errors_timeouts_and_a_restart(
    gateway, gateway_central, make_door
):
    door = make_door(gateway_central, batch=250, timeout=1.0)
    ids = add_events(door, 3000)
    device = gateway_central.device_id(door.email)
    gateway.inject(Fault("drop_before", path=PUSH, skip=0))  # request lost
    gateway.inject(Fault("drop_after", path=PUSH, skip=2))  # stored, reply lost
    gateway.inject(Fault("status", path=PUSH, status=500, skip=4))
    gateway.inject(Fault("delay", path=PUSH, seconds=1.6, skip=6))  # stored, reply too late
    gateway.inject(Fault("status", path=PUSH, status=503, skip=8))
    gateway.inject(Fault("drop_after", path=PUSH, skip=10))
    held = gateway.inject(Fault("hold", path=PUSH, skip=12))  # stored; restart before reply
    calls_before = gateway.calls[PUSH]

    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(door.engine.push_events()))
    worker.start()
    assert held.reached.wait(60), "the held push never arrived"
    gateway.restart()  # cuts the held connection: the door sees the server go away
    held.release.set()
    worker.join(60)

    assert not worker.is_alive()
    central_ids = gateway_central.event_ids(device)
    assert len(central_ids) == 3000  # zero duplicated
    assert set(central_ids) == set(ids)  # zero lost
    assert result["sent"] == 3000 and unsynced(door) == 0
    assert gateway.calls[PUSH] - calls_before >= 12 + 7  # the faults really happened


def test_a_sync_process_killed_mid_push_loses_and_duplicates_nothing(
    gateway, gateway_central, make_door
):
    door = make_door(gateway_central, batch=200)
    ids = add_events(door, 1000)
    device = gateway_central.device_id(door.email)
    held = gateway.inject(Fault("hold", path=PUSH, skip=2))  # the third batch

    proc = subprocess.Popen(
        [sys.executable, "-m", "sync", "once"],
        env=door.subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert held.reached.wait(60), proc.stderr.read().decode() if proc.poll() else "no push"
        proc.send_signal(signal.SIGKILL)  # killed after the centre stored batch 3, before the ack
        proc.wait(10)
    finally:
        held.release.set()
        if proc.poll() is None:
            proc.kill()

    assert len(gateway_central.event_ids(device)) == 600
    assert unsynced(door) == 600  # batch 3 is stored centrally but not confirmed here

    door.engine.push_events()
    central_ids = gateway_central.event_ids(device)
    assert len(central_ids) == 1000 and set(central_ids) == set(ids)
    assert unsynced(door) == 0


def test_malformed_events_are_quarantined_without_blocking_the_rest(central, make_door):
    door = make_door(central, batch=100)
    good = add_events(door, 150)
    bad_kind = add_events(door, 1, kind="Not A Kind!")[0]  # refused by the server
    bad_ts = add_events(door, 1, ts="not a time")[0]  # refused by the server
    bad_dist = add_events(door, 1, distance=float("inf"))[0]  # cannot even be sent as JSON
    good += add_events(door, 150)

    report = door.engine.push_events()

    assert report["sent"] == 300 and report["refused"] == 3
    assert set(central.event_ids(central.device_id(door.email))) == set(good)
    errors = dict(
        door.db.execute("SELECT id, sync_error FROM events WHERE sync_error IS NOT NULL").fetchall()
    )
    assert set(errors) == {bad_kind, bad_ts, bad_dist}
    assert "check constraint" in errors[bad_kind] and "finite" in errors[bad_dist]
    q = list(door.db.query("SELECT direction, kind, row_id FROM sync_quarantine"))
    assert sorted(r["row_id"] for r in q) == sorted(errors)
    assert {(r["direction"], r["kind"]) for r in q} == {("push", "event")}
    assert local.backlog(door.db) == 0
    assert door.engine.push_events()["sent"] == 0  # not sent again


def test_people_enrolled_at_the_door_go_up_and_reach_the_other_doors(
    central, make_door, face_vectors
):
    door = make_door(central)
    neighbour = make_door(central, site=door.site)
    stranger = make_door(central)  # another site
    with door.db.conn:
        pid = store.create_person(door.db, "Joe Biden", external_id=f"B-{uuid.uuid4().hex[:6]}")
        fid = store.add_face(door.db, pid, face_vectors.biden, model=face_vectors.model)

    report = door.engine.run_cycle()

    assert report["push_people"]["accepted"] == 1
    assert central.person(pid)["name"] == "Joe Biden"
    [face] = central.faces(pid)
    assert str(face["id"]) == fid
    assert np.array_equal(np.asarray(face["embedding"], dtype=np.float32), face_vectors.biden)
    mine = store.get_person(door.db, pid)
    assert not mine["dirty"] and mine["central_version"]
    neighbour.engine.pull()
    stranger.engine.pull()
    match = Gallery(store.load_gallery_rows(neighbour.db, face_vectors.model)).match(
        face_vectors.biden, 0.5
    )
    assert match.person_id == pid
    assert store.list_persons(stranger.db)[1] == 0

    store.delete_person(door.db, pid)
    door.engine.run_cycle()
    assert central.person(pid)["deleted"]
    assert door.db.execute("SELECT count(*) FROM persons WHERE id = ?", [pid]).fetchone()[0] == 0
    neighbour.engine.pull()
    assert store.list_persons(neighbour.db)[1] == 0


def test_a_push_that_meets_a_newer_central_copy_yields_to_it(
    gateway_central, make_door, face_vectors
):
    door = make_door(gateway_central)
    pid = gateway_central.add_person(
        door.site, "Barack Obama", [face_vectors.obama], face_vectors.model
    )
    door.engine.pull()
    gateway_central.update_person(pid, name="Barack H. Obama")  # not pulled yet
    store.update_person(door.db, pid, name="B. Obama")

    report = door.engine.push_people()
    assert report["conflicts"] == 1 and report["accepted"] == 0
    assert gateway_central.person(pid)["name"] == "Barack H. Obama"
    assert (
        door.db.execute("SELECT count(*) FROM audit_log WHERE action = 'sync_conflict'").fetchone()[
            0
        ]
        == 1
    )
    door.engine.pull()
    assert store.get_person(door.db, pid)["name"] == "Barack H. Obama"


def test_a_person_the_centre_refuses_is_quarantined_and_not_resent(
    gateway, gateway_central, make_door, face_vectors
):
    door = make_door(gateway_central)
    with door.db.conn:
        sid = str(uuid.uuid4())  # a schedule made at the door, never known centrally
        now = store.to_iso(store.utc_now())
        door.db["schedules"].insert(
            {"id": sid, "name": "door-only", "windows": "[]", "created_at": now, "updated_at": now}
        )
        bad = store.create_person(door.db, "Local schedule", schedule_id=sid)
        ok = store.create_person(door.db, "Fine")
        store.add_face(door.db, ok, face_vectors.biden, model=face_vectors.model)

    report = door.engine.push_people()

    assert report == {
        "accepted": 1,
        "conflicts": 0,
        "refused": 1,
        "seconds": pytest.approx(report["seconds"]),
    }
    assert gateway_central.person(ok) and gateway_central.person(bad) is None
    [q] = list(door.db.query("SELECT * FROM sync_quarantine"))
    assert q["row_id"] == bad and "not a central schedule" in q["error"]
    calls = gateway.calls["/rest/v1/rpc/push_people"]
    door.engine.push_people()
    assert gateway.calls["/rest/v1/rpc/push_people"] == calls  # nothing left to send
    store.update_person(door.db, bad, schedule_id=None)  # fixed: it goes up again
    assert door.engine.push_people()["accepted"] == 1


def test_a_badge_taken_centrally_goes_to_the_central_person(
    gateway_central, make_door, face_vectors
):
    door = make_door(gateway_central)
    badge = f"B-{uuid.uuid4().hex[:6]}"
    with door.db.conn:
        local_pid = store.create_person(door.db, "Joe (enrolled here)", external_id=badge)
        store.add_face(door.db, local_pid, face_vectors.biden, model=face_vectors.model)
    central_pid = gateway_central.add_person(
        door.site, "Barack (central)", [face_vectors.obama], face_vectors.model, external_id=badge
    )

    door.engine.run_cycle()

    assert store.get_person(door.db, central_pid)["external_id"] == badge
    assert store.get_person(door.db, local_pid)["external_id"] is None
    assert gateway_central.person(local_pid)["name"] == "Joe (enrolled here)"  # still went up
    assert (
        door.db.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'sync_conflict' AND target = ?",
            [local_pid],
        ).fetchone()[0]
        == 1
    )
