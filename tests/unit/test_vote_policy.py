"""Votes, margin, cooldown, validity and schedules as pure functions with a given clock."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from appliance.match import Match
from appliance.policy import decide, in_schedule, validate_windows
from appliance.vote import is_unknown, vote

A = Match("a", 0.35, 0.20, "a")
B = Match("b", 0.40, 0.20, "b")
A_NO_MARGIN = Match("a", 0.35, 0.01, "a")
NOBODY = Match(None, 0.70, 0.05, "a")


def test_k_of_n_votes_needed():
    assert vote([A], needed=2, window=4, margin=0.05).person_id is None
    assert vote([A, NOBODY, A], needed=2, window=4, margin=0.05).person_id == "a"


def test_votes_outside_window_do_not_count():
    assert vote([A, A, NOBODY, NOBODY, NOBODY], needed=2, window=3, margin=0.05).person_id is None


def test_margin_too_small_does_not_count():
    assert vote([A_NO_MARGIN] * 4, needed=2, window=4, margin=0.05).person_id is None


def test_disagreeing_tracks_do_not_decide():
    assert vote([A, B, A, B], needed=2, window=4, margin=0.05).person_id is None
    assert vote([A, B, A, A], needed=2, window=4, margin=0.05).person_id == "a"


def test_one_strong_match_decides_alone_when_nobody_else_is_named():
    assert vote([A], needed=2, window=4, margin=0.05, strong=0.35).person_id == "a"
    assert vote([NOBODY, A], needed=2, window=4, margin=0.05, strong=0.35).person_id == "a"
    assert vote([A], needed=2, window=4, margin=0.05, strong=0.30).person_id is None  # 0.35 > 0.30
    assert vote([A], needed=2, window=4, margin=0.05).person_id is None  # off by default
    assert vote([A_NO_MARGIN], needed=2, window=4, margin=0.05, strong=0.35).person_id is None
    assert vote([B, A], needed=2, window=4, margin=0.05, strong=0.40).person_id is None


def test_unknown_needs_a_full_window_of_misses():
    assert not is_unknown([NOBODY] * 3, window=4, margin=0.05)
    assert not is_unknown([NOBODY, A, NOBODY, NOBODY], window=4, margin=0.05)
    assert is_unknown([A, NOBODY, NOBODY, NOBODY, NOBODY], window=4, margin=0.05)
    assert is_unknown([NOBODY, A_NO_MARGIN, NOBODY, NOBODY], window=4, margin=0.05)


UTC_TZ = ZoneInfo("UTC")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
PERSON = {"active": True, "valid_from": None, "valid_until": None, "schedule_windows": None}


def test_active_person_is_granted():
    d = decide(PERSON, NOW, UTC_TZ)
    assert d.granted and d.kind == "access_granted"


def test_disabled_person_is_denied():
    assert decide({**PERSON, "active": False}, NOW, UTC_TZ).reason == "disabled"


def test_validity_dates():
    later = (NOW + timedelta(hours=1)).isoformat()
    earlier = (NOW - timedelta(seconds=1)).isoformat()
    assert decide({**PERSON, "valid_from": later}, NOW, UTC_TZ).reason == "not_yet_valid"
    assert decide({**PERSON, "valid_until": earlier}, NOW, UTC_TZ).reason == "expired"
    assert decide({**PERSON, "valid_from": earlier, "valid_until": later}, NOW, UTC_TZ).granted


def test_cooldown():
    assert decide(PERSON, NOW, UTC_TZ, 3.0, 5.0).reason == "cooldown"
    assert decide(PERSON, NOW, UTC_TZ, 3.0, 2.0).granted
    # a clock that ran backwards is not "moments ago"
    assert decide(PERSON, NOW, UTC_TZ, -3600.0, 5.0).granted
    # the other rules come first: a disabled person is "disabled", not "cooldown"
    assert decide({**PERSON, "active": False}, NOW, UTC_TZ, 1.0, 5.0).reason == "disabled"


def test_schedule_uses_the_doors_time_zone():
    office = [{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}]
    p = {**PERSON, "schedule_windows": office}
    # 12:00 UTC is 13:00 in Berlin and 07:00 in New York (Wednesday)
    assert decide(p, NOW, ZoneInfo("Europe/Berlin")).granted
    assert decide(p, NOW, ZoneInfo("America/New_York")).reason == "outside_schedule"


def test_weekend_and_overnight_windows():
    night = [{"days": [4], "start": "22:00", "end": "06:00"}]  # Friday night shift
    fri_23 = datetime(2026, 11, 27, 23, 0)
    sat_05 = datetime(2026, 11, 28, 5, 59)
    sat_06 = datetime(2026, 11, 28, 6, 0)
    thu_23 = datetime(2026, 11, 26, 23, 0)
    assert in_schedule(night, fri_23) and in_schedule(night, sat_05)
    assert not in_schedule(night, sat_06) and not in_schedule(night, thu_23)
    all_day = [{"days": [5, 6], "start": "00:00", "end": "24:00"}]
    assert in_schedule(all_day, datetime(2026, 11, 29, 23, 59))
    assert not in_schedule(all_day, datetime(2026, 11, 30, 0, 0))


def test_empty_schedule_never_admits():
    assert decide({**PERSON, "schedule_windows": []}, NOW, UTC_TZ).reason == "outside_schedule"


@pytest.mark.parametrize(
    "bad",
    [
        "x",
        [{"days": [7], "start": "09:00", "end": "10:00"}],
        [{"days": [], "start": "09:00", "end": "10:00"}],
        [{"days": [1], "start": "25:00", "end": "10:00"}],
        [{"days": [1], "start": "09:00", "end": "09:00"}],
        [{"days": [1], "start": "09:00"}],
    ],
)
def test_bad_windows_are_refused(bad):
    with pytest.raises(ValueError):
        validate_windows(bad)
