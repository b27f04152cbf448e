"""The console's pure parts: chart figures, the schedule table, upload batches, API errors."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from admin_ui import schedule_table, stats
from admin_ui.client import AdminApi, ApiRefused, ApiUnavailable
from admin_ui.enrolment import PART_OVERHEAD, batches, enrol_photos
from tests.ui.conftest import ConsoleApi, free_port

CSV = (
    b"id,ts,door,kind,person_id,person_name,distance,reason,synced\n"
    b"1,2026-03-02T07:30:00+00:00,front,access_granted,p1,Ann,0.31,,0\n"
    b"2,2026-03-02T07:45:00+00:00,front,access_denied,,,0.71,unknown_face,0\n"
    b"3,2026-03-03T23:10:00+00:00,front,access_granted,p1,Ann,0.30,,0\n"
    b"4,2026-03-03T23:20:00+00:00,front,door_forced,,,,,0\n"
    b"5,2026-03-04T12:00:00+00:00,front,access_denied,p2,Bo,0.4,outside_schedule,0\n"
)
BERLIN = ZoneInfo("Europe/Berlin")  # UTC+1 in March


def test_entries_per_hour_are_in_the_doors_time_zone() -> None:
    df = stats.events_frame(CSV, BERLIN)
    hours = stats.per_hour(df)
    assert len(hours) == 48  # every hour, both outcomes
    counts = {(r.hour, r.outcome): r.entries for r in hours.itertuples() if r.entries}
    # 07:30 UTC = 08:30 in Berlin; 23:10 UTC = 00:10 the next day; door_forced is no entry
    assert counts == {(8, "Granted"): 1, (8, "Denied"): 1, (0, "Granted"): 1, (13, "Denied"): 1}


def test_entries_per_day_cover_every_day_of_the_range() -> None:
    df = stats.events_frame(CSV, BERLIN)
    days = stats.per_day(df, date(2026, 3, 1), date(2026, 3, 5))
    got = {(r.day.date().isoformat(), r.outcome): r.entries for r in days.itertuples()}
    assert len(got) == 10
    assert got[("2026-03-02", "Granted")] == 1 and got[("2026-03-02", "Denied")] == 1
    assert got[("2026-03-04", "Granted")] == 1  # 23:10 UTC on the 3rd is the 4th in Berlin
    assert got[("2026-03-01", "Granted")] == 0
    assert stats.outcome_totals(df) == {"Granted": 2, "Denied": 2}
    assert stats.denial_reasons(df)["reason"].tolist() in (
        ["unknown_face", "outside_schedule"],
        ["outside_schedule", "unknown_face"],
    )


def test_an_empty_log_gives_empty_charts() -> None:
    df = stats.events_frame(b"", BERLIN)
    assert stats.per_hour(df)["entries"].sum() == 0
    assert stats.outcome_totals(df) == {"Granted": 0, "Denied": 0}


def test_schedule_rows_round_trip() -> None:
    windows = [
        {"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "19:00"},
        {"days": [5], "start": "22:00", "end": "02:00"},
    ]
    rows = schedule_table.windows_to_rows(windows)
    assert rows[1]["Sat"] and not rows[1]["Sun"]
    assert schedule_table.rows_to_windows(rows) == windows
    assert schedule_table.describe(windows) == "Mon–Fri 07:00–19:00; Sat 22:00–02:00"
    assert (
        schedule_table.describe([{"days": [0, 2, 5, 6], "start": "7:00", "end": "24:00"}])
        == "Mon, Wed, Sat, Sun 7:00–24:00"
    )


def test_schedule_rows_are_checked() -> None:
    blank = {d: False for d in schedule_table.DAYS} | {"Start": "", "End": None}
    assert schedule_table.rows_to_windows([blank]) == []
    assert schedule_table.rows_to_windows(
        [{**blank, "Mon": True, "Start": "7.30", "End": "1800"}]
    ) == [{"days": [0], "start": "07:30", "end": "18:00"}]
    with pytest.raises(ValueError, match="row 1: tick at least one day"):
        schedule_table.rows_to_windows([{**blank, "Start": "08:00", "End": "09:00"}])
    with pytest.raises(ValueError, match="row 1: end '25:00' is not a time of day"):
        schedule_table.rows_to_windows([{**blank, "Tue": True, "Start": "08:00", "End": "25:00"}])
    with pytest.raises(ValueError, match="start must be a time"):
        schedule_table.rows_to_windows([{**blank, "Tue": True, "Start": "noon", "End": "1"}])


def test_batches_stay_under_the_request_limits() -> None:
    photos = [(f"{i}.jpg", b"x" * 400) for i in range(25)]
    out = batches(photos, max_request_bytes=5 * (400 + PART_OVERHEAD), max_photos=10)
    assert [len(b) for b in out] == [5, 5, 5, 5, 5]
    assert [len(b) for b in batches(photos, 10**9, max_photos=10)] == [10, 10, 5]
    assert [p for b in out for p in b] == photos


def test_an_unreachable_api_is_told_apart_from_a_refusal(console_api: ConsoleApi) -> None:
    down = AdminApi(f"http://127.0.0.1:{free_port()}", "x")
    with pytest.raises(ApiUnavailable):
        down.people()
    assert down.health() is False
    bad = AdminApi(console_api.url, "fg_wrong")
    with pytest.raises(ApiRefused) as exc:
        bad.people()
    assert exc.value.status == 401 and exc.value.code == "unauthorized"
    assert AdminApi(console_api.url, console_api.viewer_token).role() == "viewer"
    assert AdminApi(console_api.url, console_api.admin_token).role() == "admin"


def test_an_oversized_photo_is_refused_without_being_sent(console_api: ConsoleApi) -> None:
    client = AdminApi(console_api.url, console_api.admin_token)
    person = client.create_person(name="Big Photo")
    outcome = enrol_photos(
        client, person["id"], [("huge.jpg", b"x" * 5000)], max_request_bytes=4000
    )
    assert outcome.enrolled == 0
    assert [(r.source, r.accepted, r.code) for r in outcome.results] == [
        ("huge.jpg", False, "too_large")
    ]
    not_image = enrol_photos(client, person["id"], [("notes.jpg", b"hello")], 10**6)
    assert not_image.results[0].message.startswith("not a readable image")
    assert "no uploaded file is a readable image" in (not_image.error or "")
    client.delete_person(person["id"])


def test_the_consoles_enrolment_rules_are_the_doors() -> None:
    # the console may not import appliance.enroll, so it keeps a copy of the rules: the same here
    from admin_ui import enrolment
    from admin_ui.client import PhotoResult
    from appliance import enroll
    from appliance.image_files import IMAGE_SUFFIXES

    assert enrolment.DUPLICATE == enroll.DUPLICATE
    assert set(enrolment.PHOTO_SUFFIXES) == IMAGE_SUFFIXES
    ok, dup = PhotoResult("a", True, "", None), PhotoResult("b", False, "", enroll.DUPLICATE)
    bad = PhotoResult("c", False, "no face found", "no_face")
    for results in ([], [ok], [dup], [bad], [ok, bad], [dup, bad], [bad, bad]):
        assert enrolment.verdict(results) == enroll.verdict(results), results
        for created in (True, False):
            assert enrolment.keep_new_person(created, results) == enroll.keep_new_person(
                created, results
            ), results
