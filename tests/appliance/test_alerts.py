"""The door's own alerts: pure detectors on a given clock, raised once per episode."""

from datetime import UTC, datetime, timedelta

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from appliance import store
from appliance.alerts import (
    AlertWatch,
    Streak,
    camera_down,
    disk_low,
    sync_failing,
)
from appliance.kiosk import Kiosk
from appliance.settings import load_settings

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def iso(dt):
    return dt.isoformat()


def watch(**overrides):
    return AlertWatch(load_settings(**overrides))


def test_unknown_streak_needs_n_within_the_window_and_fires_once_per_streak():
    s = Streak(3, 60)
    assert [s.observe(t) for t in (0, 30, 100, 110)] == [False, False, False, False]
    assert s.observe(150) is True  # 100, 110, 150 within 60 s
    assert s.observe(151) is False  # a new streak starts counting from here


def test_streak_of_zero_is_off():
    assert not any(Streak(0, 60).observe(t) for t in range(100))


def test_watch_raises_unknown_streak_and_liveness_attack_from_denials():
    w = watch(alert_unknown_count=3, alert_unknown_minutes=1, alert_liveness_count=2)
    kinds = []
    for t in range(3):
        kinds += [a.kind for a in w.on_decision("access_denied", "unknown_face", float(t))]
    assert kinds == ["unknown_streak"]
    assert w.on_decision("access_granted", None, 4.0) == []
    assert w.on_decision("access_denied", "expired", 5.0) == []
    assert w.on_decision("access_denied", "liveness_failed", 6.0) == []
    [attack] = w.on_decision("access_denied", "liveness_failed", 7.0)
    assert attack.kind == "liveness_attack" and attack.details["count"] == 2


def test_camera_down_after_the_setting_once_until_it_comes_back():
    assert not camera_down(None, 100, 60)
    assert not camera_down(50, 100, 60) and camera_down(40, 100, 60)
    w = watch(alert_camera_down_seconds=60)
    ok = {"disk": None, "sync_status": None}
    assert w.check(0, T0, camera_ok=False, **ok) == []
    assert w.check(59, T0, camera_ok=False, **ok) == []
    [down] = w.check(60, T0, camera_ok=False, **ok)
    assert down.kind == "camera_down" and down.details["seconds"] == 60
    assert w.check(500, T0, camera_ok=False, **ok) == []  # still down: said once
    assert w.check(501, T0, camera_ok=True, **ok) == []
    w.check(600, T0, camera_ok=False, **ok)
    assert [a.kind for a in w.check(661, T0, camera_ok=False, **ok)] == ["camera_down"]


def test_disk_low_below_the_free_percentage():
    assert disk_low(5, 100, 10) and not disk_low(10, 100, 10) and not disk_low(0, 0, 10)
    w = watch(alert_disk_free_percent=10)
    [low] = w.check(0, T0, camera_ok=True, disk=(4 * 2**30, 100 * 2**30), sync_status=None)
    assert low.kind == "disk_low" and low.details["free_percent"] == 4.0
    assert w.check(1, T0, camera_ok=True, disk=(4, 100), sync_status=None) == []


def test_sync_failing_from_the_sync_status_row():
    limit = timedelta(minutes=15)
    ok = {"configured": True, "last_success": iso(T0), "last_error": None}
    assert not sync_failing(ok, T0 + timedelta(hours=5), limit)
    failing = {
        "configured": True,
        "last_success": iso(T0),
        "last_error": {
            "at": iso(T0 + timedelta(minutes=1)),
            "step": "push_events",
            "message": "ConnectError",
        },
    }
    assert not sync_failing(failing, T0 + timedelta(minutes=14), limit)
    assert sync_failing(failing, T0 + timedelta(minutes=15), limit)
    assert not sync_failing(
        {**failing, "configured": False, "state": "off"}, T0 + timedelta(hours=1), limit
    )
    recovered = {**failing, "last_success": iso(T0 + timedelta(minutes=2))}
    assert not sync_failing(recovered, T0 + timedelta(hours=1), limit)


def test_watch_sync_failing_when_it_never_succeeded_counts_from_the_first_error():
    w = watch(alert_sync_failing_minutes=10)
    status = {
        "configured": True,
        "last_success": None,
        "last_error": {"at": iso(T0), "step": "pull", "message": "refused"},
    }
    assert w.check(0, T0, camera_ok=True, disk=None, sync_status=status) == []
    later = {
        **status,
        "last_error": {"at": iso(T0 + timedelta(minutes=9)), "step": "pull", "message": "refused"},
    }
    assert w.check(1, T0 + timedelta(minutes=9), camera_ok=True, disk=None, sync_status=later) == []
    [alert] = w.check(2, T0 + timedelta(minutes=10), camera_ok=True, disk=None, sync_status=later)
    assert alert.kind == "sync_failing" and alert.details["last_success"] == "never"


@pytest.mark.slow
def test_the_kiosk_raises_unknown_streak_on_the_real_clip(tmp_path, engine, clip_path):
    """Nobody enrolled: the clip's faces are unknown; with N = 1 each one is a streak."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        pin_factory="mock",
        liveness="off",
        alert_unknown_count=1,
        alert_unknown_minutes=1,
    )
    kiosk = Kiosk(
        settings,
        source=str(clip_path),
        once=True,
        fast=True,
        pin_factory=MockFactory(pin_class=MockPin),
        engine=engine,
        liveness=None,
    )
    assert kiosk.run() == 0
    unknown = [o for o in kiosk.outcomes if o.reason == "unknown_face"]
    assert unknown, "the clip shows a face nobody enrolled"
    db = store.open_db(settings.db_path)
    streaks = store.list_events(db, kinds=["unknown_streak"])
    assert len(streaks) == len(unknown)
    assert streaks[0]["reason"] == "unknown_face" and streaks[0]["details"]["count"] == 1
