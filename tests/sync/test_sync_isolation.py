"""A door may only touch its own site: attacks by a door (or a stolen door token) on a person
shared with another site, on a person revoked from its site, and on the event log.

Each attack goes through the same API a stolen token would use: the RPC functions with a payload
of the attacker's choosing, and PostgREST's table endpoints.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from postgrest.exceptions import APIError

from appliance import store
from appliance.match import Gallery
from sync.client import Refused

PUSH_PEOPLE = "/rest/v1/rpc/push_people"


def _match(door, probe: np.ndarray, model: str) -> str | None:
    return Gallery(store.load_gallery_rows(door.db, model)).match(probe, 0.5).person_id


def _payload(
    central, pid: str, *, faces: list[dict[str, Any]] | None = None, **changes: Any
) -> dict[str, Any]:
    """What a door would push for a person it holds, on top of the current central version."""
    cur = central.person(pid)
    if faces is None:
        faces = [
            {
                "id": str(f["id"]),
                "embedding": [float(v) for v in f["embedding"]],
                "model": f["model"],
                "quality": f["quality"],
            }
            for f in central.faces(pid)
            if not f["deleted"]
        ]
    return {
        "id": pid,
        "name": cur["name"] or "x",
        "external_id": cur["external_id"],
        "active": cur["active"],
        "valid_from": None,
        "valid_until": None,
        "schedule_id": None,
        "notes": cur["notes"],
        "deleted": False,
        "base_version": cur["change_no"],
        "faces": faces,
        **changes,
    }


def _refusal(reply: dict[str, Any], pid: str) -> str:
    assert not reply["accepted"] and not reply["conflicts"], reply
    [item] = reply["rejected"]
    assert item["id"] == pid and item["code"] == "42501", item
    return item["error"]


def _site_rows(central, pid: str) -> dict[str, bool]:
    return {
        r["name"]: r["deleted"]
        for r in central.sql(
            "select s.name, ps.deleted from person_sites ps join sites s on s.id = ps.site_id "
            "where ps.person_id = %s",
            [pid],
        )
    }


def _grant_access(central, pid: str, site: str) -> None:
    """An admin lets the person into one more site."""
    central.sql(
        "insert into person_sites (person_id, site_id) select %s, id from sites where name = %s",
        [pid, site],
    )


@pytest.fixture
def shared(gateway_central, make_door, face_vectors):
    """Door A (site A) and door B (site B), and Obama: enrolled at A, shared with B by an admin,
    pulled by both doors."""
    a = make_door(gateway_central)
    b = make_door(gateway_central)
    pid = gateway_central.add_person(
        a.site, "Barack Obama", [face_vectors.obama], face_vectors.model, notes="badge 7"
    )
    _grant_access(gateway_central, pid, b.site)
    for door in (a, b):
        door.engine.pull()
        assert _match(door, face_vectors.obama_probe, face_vectors.model) == pid
        door.client.ensure_session()
    return a, b, pid


# --- push_people ------------------------------------------------------------------------------


def test_a_door_cannot_restore_its_own_revoked_access(gateway_central, shared):
    a, b, pid = shared
    gateway_central.revoke_access(pid, a.site)

    reply = a.client.call("push_people", {"people": [_payload(gateway_central, pid)]})

    assert "revoked from this site" in _refusal(reply, pid)
    assert _site_rows(gateway_central, pid) == {a.site: True, b.site: False}


def test_a_door_cannot_reactivate_a_person_an_admin_disabled(
    gateway_central, make_door, face_vectors
):
    door = make_door(gateway_central)
    pid = gateway_central.add_person(
        door.site, "Joe Biden", [face_vectors.biden], face_vectors.model
    )
    gateway_central.update_person(pid, active=False)  # an admin's decision
    door.engine.pull()

    reply = door.client.call(
        "push_people", {"people": [_payload(gateway_central, pid, active=True)]}
    )

    assert "disabled by an admin" in _refusal(reply, pid)
    assert gateway_central.person(pid)["active"] is False
    # what the door itself disabled, it may enable again
    gateway_central.update_person(pid, active=True)
    for active in (False, True):
        reply = door.client.call(
            "push_people", {"people": [_payload(gateway_central, pid, active=active)]}
        )
        assert [i["id"] for i in reply["accepted"]] == [pid], reply
        assert gateway_central.person(pid)["active"] is active


def test_a_door_cannot_add_a_face_to_a_person_shared_with_another_site(
    gateway_central, shared, face_vectors
):
    a, b, pid = shared
    payload = _payload(gateway_central, pid)
    payload["faces"].append(
        {
            "id": str(uuid.uuid4()),
            "model": face_vectors.model,
            "embedding": face_vectors.biden.tolist(),
            "quality": None,
        }
    )

    reply = a.client.call("push_people", {"people": [payload]})

    assert "shared with another site" in _refusal(reply, pid)
    assert len(gateway_central.faces(pid)) == 1
    b.engine.pull()
    assert _match(b, face_vectors.biden, face_vectors.model) is None  # B never lets Biden in


def test_a_door_cannot_delete_or_rename_a_shared_person(gateway_central, shared, face_vectors):
    a, b, pid = shared
    for change in ({"deleted": True, "faces": []}, {"name": "Somebody else"}):
        reply = a.client.call("push_people", {"people": [_payload(gateway_central, pid, **change)]})
        assert "shared with another site" in _refusal(reply, pid)
    person = gateway_central.person(pid)
    assert not person["deleted"] and person["name"] == "Barack Obama"
    b.engine.pull()
    assert _match(b, face_vectors.obama_probe, face_vectors.model) == pid
    # once the admin takes B's access away, the person is A's alone again: A may delete it
    gateway_central.revoke_access(pid, b.site)
    reply = a.client.call(
        "push_people", {"people": [_payload(gateway_central, pid, deleted=True, faces=[])]}
    )
    assert [i["id"] for i in reply["accepted"]] == [pid], reply
    assert gateway_central.person(pid)["deleted"]


def test_a_refused_person_is_quarantined_at_the_door_with_the_reason(
    gateway, gateway_central, shared, face_vectors
):
    a, b, pid = shared
    with a.db.conn:  # an operator at door A adds a photo of someone else to the shared person
        store.add_face(a.db, pid, face_vectors.biden, model=face_vectors.model)
        newcomer = store.create_person(a.db, "Enrolled at A")  # in the same batch: goes up
        store.add_face(a.db, newcomer, face_vectors.obama_probe, model=face_vectors.model)

    report = a.engine.push_people()

    assert report["refused"] == 1 and report["accepted"] == 1
    assert gateway_central.person(newcomer)["name"] == "Enrolled at A"
    assert _site_rows(gateway_central, newcomer) == {a.site: False}
    [q] = list(a.db.query("SELECT direction, kind, row_id, error FROM sync_quarantine"))
    assert (q["direction"], q["kind"], q["row_id"]) == ("push", "person", pid)
    assert "shared with another site" in q["error"]
    assert len(gateway_central.faces(pid)) == 1
    calls = gateway.calls[PUSH_PEOPLE]
    a.engine.push_people()
    assert gateway.calls[PUSH_PEOPLE] == calls  # not sent again until it changes


# --- reading a revoked person -----------------------------------------------------------------


def test_a_revoked_site_reads_only_the_tombstone(gateway_central, shared, face_vectors):
    a, b, pid = shared
    cursor = a.engine.pull()["cursor"]
    gateway_central.revoke_access(pid, a.site)
    sb = a.client._sb

    assert sb.table("persons").select("*").eq("id", pid).execute().data == []
    assert sb.table("faces").select("*").eq("person_id", pid).execute().data == []
    [access] = sb.table("person_sites").select("*").eq("person_id", pid).execute().data
    assert access["deleted"] is True
    for after in (0, cursor):
        page = a.client.call("pull_changes", {"after": after, "lim": 1000})
        rows = [c for c in page["changes"] if pid in (c["row"]["id"], c["row"].get("person_id"))]
        assert {c["kind"] for c in rows} == {"person", "face"}
        for change in rows:
            assert change["row"]["deleted"] is True
            assert set(change["row"]) <= {"id", "person_id", "deleted"}, change

    a.engine.pull()  # and the door acts on the tombstone
    assert _match(a, face_vectors.obama_probe, face_vectors.model) is None
    # site B is untouched
    [row] = b.client._sb.table("persons").select("name, notes").eq("id", pid).execute().data
    assert row == {"name": "Barack Obama", "notes": "badge 7"}
    b.engine.pull()
    assert _match(b, face_vectors.obama_probe, face_vectors.model) == pid


# --- events and heartbeat ---------------------------------------------------------------------


def _event(**fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "ts": store.to_iso(store.utc_now()), "kind": "grant", **fields}


def _stored(central, event_id: str) -> dict[str, Any]:
    return central.sql("select * from access_events where id = %s", [event_id])[0]


def test_an_event_carries_the_name_of_the_door_that_sent_it(gateway_central, shared):
    a, b, _ = shared
    forged = _event(door=b.name)
    a.client.call("push_events", {"events": [forged]})
    row = _stored(gateway_central, forged["id"])
    assert row["door"] == a.name
    assert str(row["device_id"]) == gateway_central.device_id(a.email)


def test_an_event_cannot_name_a_person_of_another_site(gateway_central, shared, face_vectors):
    a, b, pid = shared
    theirs = gateway_central.add_person(
        b.site, "Joe Biden", [face_vectors.biden], face_vectors.model
    )
    framed = _event(person_id=theirs, person_name="Joe Biden")
    mine = _event(person_id=pid, person_name="Barack Obama")

    reply = a.client.call("push_events", {"events": [framed, mine]})

    assert reply["inserted"] == 2 and reply["rejected"] == []  # kept, never dropped
    row = _stored(gateway_central, framed["id"])
    assert row["person_id"] is None and row["person_name"] is None
    assert str(row["claimed_person_id"]) == theirs
    row = _stored(gateway_central, mine["id"])
    assert str(row["person_id"]) == pid and row["person_name"] == "Barack Obama"
    assert row["claimed_person_id"] is None
    # an offline door's backlog may name a person revoked from its site since: still its own
    gateway_central.revoke_access(pid, a.site)
    late = _event(person_id=pid, person_name="Barack Obama")
    a.client.call("push_events", {"events": [late]})
    assert str(_stored(gateway_central, late["id"])["person_id"]) == pid


def test_an_event_far_from_the_server_clock_is_kept_and_flagged(gateway_central, shared):
    a, _, _ = shared
    now = store.utc_now()
    events = {
        "future": _event(ts=store.to_iso(now + timedelta(days=1))),
        "past": _event(ts=store.to_iso(now - timedelta(days=400))),
        "backlog": _event(ts=store.to_iso(now - timedelta(days=3))),
        "now": _event(),
    }

    reply = a.client.call("push_events", {"events": list(events.values())})

    assert reply["inserted"] == 4
    flags = {}
    for key, ev in events.items():
        row = _stored(gateway_central, ev["id"])
        assert store.to_iso(row["ts"]) == ev["ts"]  # the door's time is kept as sent
        assert abs((row["received_at"] - now).total_seconds()) < 60
        flags[key] = row["ts_out_of_window"]
    assert flags == {"future": True, "past": True, "backlog": False, "now": False}


def test_an_oversized_heartbeat_is_refused(gateway_central, shared):
    a, _, _ = shared
    with pytest.raises(Refused) as refused:
        a.client.call("heartbeat", {"status": {"junk": "x" * 100_000}})
    assert refused.value.code == "22023" and "at most" in str(refused.value)
    a.engine.heartbeat()  # the door's own status fits
    [row] = gateway_central.sql(
        "select status from device_heartbeats where device_id = %s",
        [gateway_central.device_id(a.email)],
    )
    assert row["status"]["door"] == a.name


def test_row_security_is_forced_where_no_owner_run_code_needs_to_bypass_it(gateway_central):
    rows = gateway_central.sql(
        "select relname, relforcerowsecurity from pg_class "
        "where relnamespace = 'public'::regnamespace and relkind = 'r' and relrowsecurity"
    )
    forced = {r["relname"] for r in rows if r["relforcerowsecurity"]}
    assert forced == {"sites", "access_events", "device_heartbeats"}


# --- the same checks when a stolen token skips the RPC and writes the tables ----------------


def test_a_direct_table_insert_gets_the_same_event_checks(gateway_central, shared, face_vectors):
    """``access_events`` is insertable by doors (its own device and site): a stolen token that
    writes there instead of calling push_events must not get around the door name, the person
    check or the clock flag."""
    a, b, _ = shared
    theirs = gateway_central.add_person(
        b.site, "Joe Biden", [face_vectors.biden], face_vectors.model
    )
    forged = {
        **_event(
            door=b.name,
            person_id=theirs,
            person_name="Joe Biden",
            ts=store.to_iso(store.utc_now() + timedelta(days=2)),
        ),
        "device_id": gateway_central.device_id(a.email),
        "site_id": gateway_central.site_id(a.site),
        "ts_out_of_window": False,
        "received_at": "2000-01-01T00:00:00+00:00",
    }
    try:
        a.client._sb.table("access_events").insert(forged).execute()
    except APIError as exc:  # refusing the table write outright is fine too
        assert exc.code == "42501", exc
        return
    row = _stored(gateway_central, forged["id"])
    assert row["door"] == a.name
    assert row["person_id"] is None and row["person_name"] is None
    assert str(row["claimed_person_id"]) == theirs
    assert row["ts_out_of_window"] is True
    assert abs((row["received_at"] - store.utc_now()).total_seconds()) < 60


def test_a_direct_heartbeat_write_has_the_same_size_cap(gateway_central, shared):
    a, _, _ = shared
    a.engine.heartbeat()
    sb = a.client._sb
    device = gateway_central.device_id(a.email)
    huge = {"junk": "x" * 100_000}
    for write in (
        lambda: sb.table("device_heartbeats").update({"status": huge}).eq("device_id", device),
        lambda: sb.table("device_heartbeats").upsert(
            {"device_id": device, "site_id": gateway_central.site_id(a.site), "status": huge}
        ),
    ):
        try:
            write().execute()
        except APIError:
            pass
    # nor can it post-date its heartbeat to stay "alive" for the missing-heartbeat alert
    sb.table("device_heartbeats").update({"ts": "2100-01-01T00:00:00+00:00"}).eq(
        "device_id", device
    ).execute()
    [row] = gateway_central.sql(
        "select octet_length(status::text) as size, ts from device_heartbeats where device_id = %s",
        [device],
    )
    assert row["size"] <= 65536
    assert abs((row["ts"] - store.utc_now()).total_seconds()) < 60


def test_an_oversized_event_is_refused_and_the_rest_of_the_batch_kept(gateway_central, shared):
    a, _, _ = shared
    huge = _event(details={"junk": "x" * 100_000})
    fine = _event()
    reply = a.client.call("push_events", {"events": [huge, fine]})
    assert reply["inserted"] == 1
    [refused] = reply["rejected"]
    assert refused["id"] == huge["id"] and refused["code"] == "22023"
    assert _stored(gateway_central, fine["id"])["kind"] == "grant"
