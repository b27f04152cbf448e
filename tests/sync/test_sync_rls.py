"""Row Level Security: what a door (and anyone with the public anon key) can read and write.

Attacks go through the same API a stolen door token would use: PostgREST's table endpoints as
well as the RPC functions.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client

from appliance import store
from sync.client import Refused


def _rows_or_refused(query) -> list:
    """The rows a query returns; an outright refusal counts as reading nothing."""
    try:
        return query.execute().data
    except APIError as exc:
        assert exc.code in ("42501", "401", "403"), exc
        return []


@pytest.fixture
def two_sites(central, make_door, face_vectors):
    door = make_door(central)
    other = make_door(central)
    mine = central.add_person(door.site, "Obama", [face_vectors.obama], face_vectors.model)
    theirs = central.add_person(other.site, "Biden", [face_vectors.biden], face_vectors.model)
    for d in (door, other):
        d.client.ensure_session()
    return door, other, mine, theirs


def test_a_door_cannot_read_another_sites_people(central, two_sites):
    door, other, mine, theirs = two_sites
    sb = door.client._sb
    assert [r["id"] for r in sb.table("persons").select("id").execute().data] == [mine]
    assert {r["person_id"] for r in sb.table("faces").select("person_id").execute().data} == {mine}
    assert [r["name"] for r in sb.table("sites").select("name").execute().data] == [door.site]
    assert [r["name"] for r in sb.table("devices").select("name").execute().data] == [door.name]
    assert sb.table("persons").select("id").eq("id", theirs).execute().data == []
    page = door.client.call("pull_changes", {"after": 0, "lim": 1000})
    assert {c["row"].get("person_id", c["row"]["id"]) for c in page["changes"]} == {mine}


def test_a_door_cannot_write_another_doors_events(central, two_sites):
    door, other, _, _ = two_sites
    other_device = central.device_id(other.email)
    my_device = central.device_id(door.email)
    event = {
        "id": str(uuid.uuid4()),
        "ts": store.to_iso(store.utc_now()),
        "door": other.name,
        "kind": "grant",
    }
    sb = door.client._sb

    # straight into the table, claiming to be the other door: refused by RLS
    with pytest.raises(APIError) as refused:
        sb.table("access_events").insert(
            {**event, "device_id": other_device, "site_id": central.site_id(other.site)}
        ).execute()
    assert refused.value.code == "42501"

    # the other door's event, replayed by this door with the same id: theirs stays theirs
    other.client.call("push_events", {"events": [event]})
    door.client.call("push_events", {"events": [{**event, "device_id": other_device}]})
    assert central.event_ids(other_device) == [event["id"]]
    assert central.event_ids(my_device) == []

    # a device id in the payload is ignored: the event is recorded as this door's own
    mine = {**event, "id": str(uuid.uuid4()), "device_id": other_device}
    door.client.call("push_events", {"events": [mine]})
    assert central.event_ids(my_device) == [mine["id"]]
    assert _rows_or_refused(sb.table("access_events").select("id").eq("id", event["id"])) == []


def test_a_door_cannot_change_people_directly_or_another_sites_people(central, two_sites):
    door, other, mine, theirs = two_sites
    sb = door.client._sb
    with pytest.raises(APIError):
        sb.table("persons").update({"name": "hijacked"}).eq("id", mine).execute()
    with pytest.raises(APIError):
        sb.table("persons").insert({"name": "intruder"}).execute()
    reply = door.client.call(
        "push_people",
        {"people": [{"id": theirs, "name": "hijacked", "base_version": None, "faces": []}]},
    )
    assert reply["rejected"] and "another site" in reply["rejected"][0]["error"]
    assert central.person(theirs)["name"] == "Biden"
    with pytest.raises(Refused):
        door.client.call(
            "provision_device",
            {"site_name": door.site, "door_name": "rogue", "user_id": str(uuid.uuid4())},
        )


def test_anon_reads_nothing(central, two_sites):
    with httpx.Client(timeout=10) as http:
        anon = create_client(
            central.url,
            central.anon_key,
            ClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False),
        )
        for table in (
            "persons",
            "faces",
            "sites",
            "devices",
            "schedules",
            "person_sites",
            "access_events",
            "device_heartbeats",
        ):
            assert _rows_or_refused(anon.table(table).select("*")) == [], table
        for fn, params in (
            ("pull_changes", {"after": 0}),
            ("push_events", {"events": []}),
            ("heartbeat", {"status": {}}),
        ):
            with pytest.raises(APIError) as refused:
                anon.rpc(fn, params).execute()
            assert refused.value.code in ("42501", "401"), fn
