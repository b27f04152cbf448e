"""A backlog of people goes up page by page: rows still waiting never hide the ones behind them."""

from __future__ import annotations

import threading
import uuid

from appliance import store
from sync import local
from sync.engine import PEOPLE_PAGE
from tests.supabase_gateway import Fault

PUSH_PEOPLE = "/rest/v1/rpc/push_people"


def enrol(door, n: int, vector, model: str, **fields) -> list[str]:
    with door.db.conn:
        ids = [store.create_person(door.db, f"Person {i}", **fields) for i in range(n)]
        for pid in ids:
            store.add_face(door.db, pid, vector, model=model)
    return ids


def test_a_full_page_of_refused_people_does_not_block_the_rest(
    gateway, gateway_central, make_door, face_vectors
):
    door = make_door(gateway_central)
    sid = str(uuid.uuid4())  # a schedule made at the door only: the centre refuses its users
    now = store.to_iso(store.utc_now())
    with door.db.conn:
        door.db["schedules"].insert(
            {"id": sid, "name": "door-only", "windows": "[]", "created_at": now, "updated_at": now}
        )
    refused = enrol(door, PEOPLE_PAGE, face_vectors.biden, face_vectors.model, schedule_id=sid)
    fine = enrol(door, 50, face_vectors.obama, face_vectors.model)

    report = door.engine.push_people()

    assert (report["accepted"], report["refused"]) == (50, 100)
    assert all(gateway_central.person(pid) for pid in fine)
    assert gateway_central.person(refused[0]) is None
    quarantined = {r[0] for r in door.db.execute("SELECT row_id FROM sync_quarantine")}
    assert quarantined == set(refused)
    calls = gateway.calls[PUSH_PEOPLE]
    assert door.engine.push_people()["accepted"] == 0
    assert gateway.calls[PUSH_PEOPLE] == calls  # the refused are not sent again


def test_people_still_waiting_after_their_push_do_not_hide_the_rest(
    gateway, gateway_central, make_door, face_vectors
):
    door = make_door(gateway_central)
    enrol(door, 150, face_vectors.biden, face_vectors.model)
    first_page = [p["id"] for p in local.people_to_push(door.db, PEOPLE_PAGE)]
    held = gateway.inject(Fault("hold", path=PUSH_PEOPLE))  # the first page's push
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(door.engine.push_people()))
    worker.start()
    assert held.reached.wait(60), "the first push never arrived"
    # while it is in flight, every person of the first page gets another face: confirmed, they
    # stay waiting (the new face is dirty) at the head of the queue, with the same updated_at
    for pid in first_page:
        with door.db.conn:
            store.add_face(door.db, pid, face_vectors.obama, model=face_vectors.model)
    held.release.set()
    worker.join(60)

    assert not worker.is_alive()
    assert result["accepted"] == 150  # all of them, not only the first page
    assert len(local.people_to_push(door.db, 1000)) == PEOPLE_PAGE  # the new faces wait
    assert door.engine.push_people()["accepted"] == PEOPLE_PAGE
    assert local.people_to_push(door.db, 1000) == []
    assert len(gateway_central.faces(first_page[0])) == 2
