"""The entry log over HTTP: filters, paging, CSV export, snapshots."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from appliance import store
from tests.api.conftest import Api
from tests.api.test_auth import assert_error

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def door(api: Api) -> str:
    """A door name of this module's own: 30 events the appliance wrote, one a minute."""
    name = f"door-{uuid.uuid4().hex[:6]}"
    kinds = ["access_granted", "access_denied", "door_forced"]
    store.insert_events(
        api.db,
        [
            {
                "id": f"{name}-{i:02d}",
                "ts": store.to_iso(T0 + timedelta(minutes=i)),
                "door": name,
                "kind": kinds[i % 3],
                "person_id": "p-ann" if i % 3 == 0 else None,
                "person_name": '=HYPERLINK("http://x")' if i == 3 else "Ann",
                "distance": 0.31,
                "details": {"votes": 3},
            }
            for i in range(30)
        ],
    )
    return name


def _ids(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [e["id"] for e in resp.json()["items"]]


def test_newest_first_with_paging(api: Api, door: str) -> None:
    page = api.viewer.get("/events", params={"door": door, "limit": 10}).json()
    assert [e["id"] for e in page["items"]] == [f"{door}-{i:02d}" for i in range(29, 19, -1)]
    assert page["next_offset"] == 10
    last = api.viewer.get("/events", params={"door": door, "limit": 10, "offset": 20}).json()
    assert last["items"][-1]["id"] == f"{door}-00" and last["next_offset"] is None
    first = page["items"][0]
    assert first["details"] == {"votes": 3} and first["has_snapshot"] is False
    assert "snapshot_path" not in first  # server paths stay on the server


def test_filters(api: Api, door: str) -> None:
    since = store.to_iso(T0 + timedelta(minutes=10))
    until = (T0 + timedelta(minutes=13)).isoformat()
    assert _ids(
        api.viewer.get("/events", params={"door": door, "since": since, "until": until})
    ) == [f"{door}-12", f"{door}-11", f"{door}-10"]
    forced = _ids(api.viewer.get("/events", params={"door": door, "kind": "door_forced"}))
    assert len(forced) == 10
    both = _ids(
        api.viewer.get("/events", params={"door": door, "kind": "door_forced,access_denied"})
    )
    repeated = _ids(
        api.viewer.get(
            "/events", params=[("door", door), ("kind", "door_forced"), ("kind", "access_denied")]
        )
    )
    assert len(both) == 20 and both == repeated
    assert len(_ids(api.viewer.get("/events", params={"door": door, "person_id": "p-ann"}))) == 10


def test_an_unencoded_plus_in_a_time_zone_is_understood(api: Api, door: str) -> None:
    url = f"/events?door={door}&since=2026-03-02T09:28:00+01:00"  # "+" arrives as a space
    assert _ids(api.viewer.get(url)) == [f"{door}-29", f"{door}-28"]


def test_bad_filters_are_400(api: Api) -> None:
    err = assert_error(api.viewer.get("/events", params={"since": "yesterday"}), 400)
    assert "since" in err["message"]
    assert_error(api.viewer.get("/events", params={"limit": 5000}), 400)
    assert_error(api.viewer.get("/events", params={"offset": -1}), 400)


@pytest.mark.parametrize(
    "instant",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00"],
)
@pytest.mark.parametrize("name", ["since", "until"])
def test_an_instant_at_the_edge_of_the_calendar_is_400(api: Api, name: str, instant: str) -> None:
    # in UTC the first one is before year 1: converting it used to overflow into a 500
    for path in ("/events", "/events.csv"):
        err = assert_error(api.viewer.get(path, params={name: instant}), 400, "bad_request")
        assert name in err["message"] and "out of range" in err["message"]


@pytest.mark.parametrize("path", ["/events.csv", "/events?format=csv"])
def test_csv_export(api: Api, door: str, path: str) -> None:
    resp = api.viewer.get(path, params={"door": door})
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(rows) == 30 and rows[0]["id"] == f"{door}-29"
    assert rows[0]["kind"] == "door_forced" and rows[0]["distance"] == "0.31"
    # a name that a spreadsheet would run as a formula is exported as text
    assert next(r for r in rows if r["id"] == f"{door}-03")["person_name"].startswith("'=")


def test_csv_export_of_more_than_one_page(api: Api) -> None:
    name = f"busy-{uuid.uuid4().hex[:6]}"
    store.insert_events(api.db, [{"door": name, "kind": "access_denied"} for _ in range(2500)])
    rows = list(csv.reader(io.StringIO(api.viewer.get("/events.csv", params={"door": name}).text)))
    assert len(rows) == 2501 and len({r[0] for r in rows[1:]}) == 2500


def test_one_event_and_its_snapshot(api: Api, door: str) -> None:
    assert api.viewer.get(f"/events/{door}-05").json()["kind"] == "door_forced"
    assert_error(api.viewer.get("/events/no-such-event"), 404)
    assert_error(api.viewer.get(f"/events/{door}-05/snapshot"), 404)  # none stored

    snap_dir = api.settings.snapshot_dir
    snap_dir.mkdir(parents=True, exist_ok=True)
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg-bytes\xff\xd9"
    (snap_dir / "ev1.jpg").write_bytes(jpeg)
    outside = api.settings.data_dir / "facegate.db"
    store.insert_events(
        api.db,
        [
            {
                "id": "with-snap",
                "door": door,
                "kind": "access_granted",
                "snapshot_path": str(snap_dir / "ev1.jpg"),
            },
            {
                "id": "gone-snap",
                "door": door,
                "kind": "access_granted",
                "snapshot_path": str(snap_dir / "pruned.jpg"),
            },
            {
                "id": "evil-snap",
                "door": door,
                "kind": "access_granted",
                "snapshot_path": str(outside),
            },
        ],
    )
    resp = api.viewer.get("/events/with-snap/snapshot")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/jpeg"
    assert resp.content == jpeg
    assert api.viewer.get("/events/with-snap").json()["has_snapshot"] is True
    assert_error(api.viewer.get("/events/gone-snap/snapshot"), 404)
    assert_error(api.viewer.get("/events/evil-snap/snapshot"), 404)  # never outside the folder


def test_before_cursor_pages_through_the_log_without_gaps_or_repeats(api: Api) -> None:
    store.insert_events(
        api.db,
        [
            {
                "door": "cursor-door",
                "kind": "access_denied",
                "reason": "unknown_face",
                "ts": f"2026-01-01T00:00:{i:02d}.000+00:00",
            }
            for i in range(25)
        ],
    )
    seen, before = [], None
    while True:
        params = {"door": "cursor-door", "limit": 10, **({"before": before} if before else {})}
        page = api.viewer.get("/events", params=params).json()
        seen += [e["id"] for e in page["items"]]
        before = page["next_before"]
        # a new event arriving meanwhile does not shift the pages still to come
        store.insert_events(
            api.db,
            [
                {
                    "door": "cursor-door",
                    "kind": "access_denied",
                    "ts": "2026-01-02T00:00:00.000+00:00",
                }
            ],
        )
        if before is None:
            break
    assert len(seen) == 25 == len(set(seen))
    bad = api.viewer.get("/events", params={"before": "no-such-event"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
