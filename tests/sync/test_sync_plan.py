"""The pure sync rules: who wins, what is malformed, what is confirmed, how long to wait."""

from __future__ import annotations

import random
import uuid

import pytest

from sync import plan
from sync.plan import LocalPerson, MalformedRow, PersonAction, decide_person


@pytest.mark.parametrize(
    ("local", "change_no", "deleted", "expected"),
    [
        (None, 5, False, (PersonAction.INSERT, False)),
        (None, 5, True, (PersonAction.IGNORE, False)),
        (LocalPerson(dirty=False, central_version=3), 5, False, (PersonAction.UPDATE, False)),
        (LocalPerson(dirty=False, central_version=3), 5, True, (PersonAction.DELETE, False)),
        # changed at both ends: the centre wins, and it is a conflict
        (LocalPerson(dirty=True, central_version=3), 5, False, (PersonAction.UPDATE, True)),
        (LocalPerson(dirty=True, central_version=3), 5, True, (PersonAction.DELETE, True)),
        (LocalPerson(dirty=True, central_version=None), 5, False, (PersonAction.UPDATE, True)),
        # our own push coming back while we changed it again: keep the newer local edit
        (LocalPerson(dirty=True, central_version=5), 5, False, (PersonAction.KEEP_LOCAL, False)),
    ],
)
def test_decide_person(local, change_no, deleted, expected):
    assert decide_person(local, change_no, deleted) == expected


def _event(**kw):
    return {
        "id": str(uuid.uuid4()),
        "ts": "2026-11-25T10:00:00.000+00:00",
        "door": "d",
        "kind": "grant",
        "person_id": None,
        "person_name": None,
        "distance": 0.3,
        "reason": None,
        "track_id": None,
        "details": None,
        **kw,
    }


def test_event_batches_refuse_only_what_json_cannot_carry():
    good = _event(details='{"votes": 3}')
    text = _event(details="free text, not JSON")
    inf = _event(distance=float("inf"))
    payloads, refused = plan.plan_event_batch([good, text, inf])
    assert [p["id"] for p in payloads] == [good["id"], text["id"]]
    assert payloads[0]["details"] == {"votes": 3}
    assert payloads[1]["details"] == {"text": "free text, not JSON"}  # kept, not dropped
    assert list(refused) == [inf["id"]] and "finite" in refused[inf["id"]]


def test_only_an_explicit_reply_confirms_events():
    sent = [_event(), _event(), _event()]
    ok, bad = plan.confirmed_ids(
        sent,
        {"received": 3, "inserted": 1, "rejected": [{"id": sent[1]["id"], "error": "bad kind"}]},
    )
    assert ok == [sent[0]["id"], sent[2]["id"]] and bad == {sent[1]["id"]: "bad kind"}
    for reply in (None, [], {"received": 3}, {"received": 2, "rejected": []}):
        with pytest.raises(MalformedRow):
            plan.confirmed_ids(sent, reply)


def _face(**kw):
    return {
        "id": str(uuid.uuid4()),
        "person_id": str(uuid.uuid4()),
        "model": "m",
        "embedding": [0.1] * 128,
        "quality": None,
        "deleted": False,
        **kw,
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"embedding": [0.1] * 127},
        {"embedding": ["NaN"] + [0.1] * 127},
        {"embedding": [True] + [0.1] * 127},
        {"embedding": None},
        {"model": ""},
        {"id": "not-a-uuid"},
        {"deleted": "yes"},
    ],
)
def test_malformed_faces_are_named(bad):
    with pytest.raises(MalformedRow):
        plan.parse_face(_face(**bad))


def test_a_deleted_face_needs_no_embedding():
    face = plan.parse_face(_face(embedding=None, deleted=True))
    assert face.deleted and face.embedding is None


def test_person_rows_are_normalised_and_checked():
    pid = str(uuid.uuid4())
    p = plan.parse_person(
        {
            "id": pid,
            "name": "A",
            "external_id": None,
            "active": True,
            "valid_from": "2026-01-01T00:00:00+01:00",
            "valid_until": None,
            "schedule_id": None,
            "notes": None,
            "deleted": False,
        }
    )
    assert p.valid_from == "2025-12-31T23:00:00.000+00:00"  # the store's UTC format
    with pytest.raises(MalformedRow, match="after"):
        plan.parse_person(
            {
                "id": pid,
                "name": "A",
                "valid_from": "2026-02-01T00:00:00Z",
                "valid_until": "2026-01-01T00:00:00Z",
            }
        )
    with pytest.raises(MalformedRow, match="name"):
        plan.parse_person({"id": pid, "name": "  "})
    assert plan.parse_person({"id": pid, "deleted": True}).deleted
    # before year 1 in UTC: quarantined as malformed (an OverflowError used to stop the pull)
    with pytest.raises(MalformedRow, match="valid_from"):
        plan.parse_person({"id": pid, "name": "A", "valid_from": "0001-01-01T00:00:00+14:00"})


def test_a_page_cursor_never_goes_back():
    assert plan.parse_page({"changes": [], "next": 7, "more": False}, 7) == ([], 7, False)
    with pytest.raises(MalformedRow):
        plan.parse_page({"changes": [], "next": 3}, 7)


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(1)
    delays = [plan.backoff_delay(a, 1.0, 30.0, rng) for a in range(8)]
    for attempt, d in enumerate(delays):
        ceiling = min(30.0, 2**attempt)
        assert ceiling / 2 <= d <= ceiling
    assert len({round(plan.backoff_delay(3, 1.0, 30.0, rng), 6) for _ in range(20)}) > 10


def test_heartbeats_never_carry_camera_passwords():
    status = {"appliance": {"camera": "rtsp://admin:hunter2@10.0.0.5/stream"}, "n": [1, "x"]}
    assert plan.redact(status) == {
        "appliance": {"camera": "rtsp://***@10.0.0.5/stream"},
        "n": [1, "x"],
    }
