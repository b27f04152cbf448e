"""The doctor: pure checks judge gathered facts; a real run over a real store, clip and API."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from admin_api.app import create_app
from admin_api.server import ApiServer
from appliance import doctor, store
from appliance.doctor import FAIL, OK, WARN
from appliance.health import decode_throttled, parse_throttled, read_cpu_temp_c
from tests.api.conftest import make_settings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
STORE_OK = {
    "integrity": "ok",
    "schema": 3,
    "schema_known": 3,
    "free_mb": 5000.0,
    "min_free_mb": 500,
    "wal_mb": 1.0,
}


@pytest.mark.parametrize(
    ("facts", "status", "fix_says"),
    [
        (STORE_OK, OK, ""),
        ({**STORE_OK, "integrity": "*** page 3 corrupt"}, FAIL, "restore"),
        ({**STORE_OK, "schema": 9}, FAIL, "upgrade"),
        ({**STORE_OK, "free_mb": 100.0}, WARN, "snapshots are paused"),
        ({**STORE_OK, "wal_mb": 500.0}, WARN, "WAL"),
        ({**STORE_OK, "schema": 2}, WARN, "migrations"),
        ({"error": "unable to open database file"}, FAIL, "FACEGATE_DATA_DIR"),
    ],
)
def test_store_check(facts, status, fix_says):
    check = doctor.check_store(facts)
    assert check.status == status
    assert fix_says in check.fix


def test_camera_clock_liveness_units_checks():
    assert doctor.check_camera({"source": "0", "opened": False}).status == FAIL
    slow = doctor.check_camera({"source": "0", "opened": True, "fps": 1.0})
    assert slow.status == WARN and "FACEGATE_DETECT_WIDTH" in slow.fix
    assert doctor.check_camera({"source": "0", "opened": True, "fps": 12.0}).status == OK
    assert doctor.check_clock({"ntp": False}).status == FAIL
    assert doctor.check_clock({"ntp": None, "why": "no timedatectl"}).status == WARN
    assert doctor.check_clock({"ntp": True}).status == OK
    assert doctor.check_liveness("off").status == WARN
    units = {"systemd": True, "states": {"facegate-api.service": "failed"}}
    assert doctor.check_units(units).status == FAIL
    units["states"]["facegate-api.service"] = "inactive"
    assert doctor.check_units(units).status == WARN
    assert doctor.check_units({"systemd": False}).status == OK


def test_api_check_wants_loopback_or_tls():
    base = {"port": 8080, "reachable": True, "behind_tls": False, "systemd": False}
    assert doctor.check_api({**base, "host": "127.0.0.1"}).status == OK
    assert doctor.check_api({**base, "host": "::1"}).status == OK
    exposed = doctor.check_api({**base, "host": "0.0.0.0"})
    assert exposed.status == WARN and "FACEGATE_API_BEHIND_TLS" in exposed.fix
    assert doctor.check_api({**base, "host": "0.0.0.0", "behind_tls": True}).status == OK
    down = {**base, "host": "127.0.0.1", "reachable": False, "error": "refused"}
    assert doctor.check_api(down).status == WARN  # a laptop: nothing should be running
    assert doctor.check_api({**down, "systemd": True}).status == FAIL


def test_sync_check():
    assert doctor.check_sync({"configured": False}, NOW).status == OK
    recent = store.to_iso(NOW - timedelta(minutes=5))
    up = {"configured": True, "reachable": True, "backlog": 3, "last_success": recent}
    assert doctor.check_sync(up, NOW).status == OK
    old = store.to_iso(NOW - timedelta(days=2))
    assert doctor.check_sync({**up, "last_success": old}, NOW).status == WARN
    down = doctor.check_sync({**up, "reachable": False, "url": "https://x", "error": "dns"}, NOW)
    assert down.status == FAIL and "backlog 3" in down.detail


def test_pi_health_readings(tmp_path):
    assert decode_throttled(0) == []
    assert decode_throttled(parse_throttled("throttled=0x50005")) == [
        "undervoltage",
        "throttled",
        "undervoltage_occurred",
        "throttling_occurred",
    ]
    assert parse_throttled("garbage") is None
    temp = tmp_path / "temp"
    temp.write_text("48312\n")
    assert read_cpu_temp_c(temp) == 48.3
    assert read_cpu_temp_c(tmp_path / "missing") is None


def test_doctor_on_a_real_store_clip_and_api(tmp_path, clip_path, capsys):
    settings = make_settings(tmp_path / "data", camera_source=str(clip_path))
    store.open_db(settings.db_path).conn.close()
    app = create_app(settings)
    server = ApiServer(app, settings, host="127.0.0.1", port=0).start()
    try:
        settings = settings.model_copy(update={"api_port": server.port})
        rc = doctor.main(settings, json_out=True, camera_seconds=0.5)
    finally:
        server.stop()
        app.extensions["facegate"].close()
    report = json.loads(capsys.readouterr().out)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["camera"]["status"] == OK and "640x360" in by_name["camera"]["detail"]
    assert by_name["store"]["status"] == OK
    assert by_name["api"]["status"] == OK
    assert by_name["face models"]["status"] == OK
    assert by_name["pins"]["status"] == WARN  # mock: said, not hidden
    assert rc == (1 if report["overall"] == FAIL else 0)
    assert report["overall"] != FAIL


def test_doctor_fails_on_a_corrupt_store(tmp_path, clip_path, capsys):
    settings = make_settings(tmp_path / "data", camera_source=str(clip_path))
    settings.data_dir.mkdir(parents=True)
    settings.db_path.write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    assert doctor.main(settings, camera_seconds=0.2) == 1
    out = capsys.readouterr().out
    assert "FAIL  store" in out and "overall: FAIL" in out


def test_doctor_leaves_the_camera_of_a_silent_running_kiosk_alone(tmp_path, clip_path):
    """A kiosk holds the data folder but wrote no status yet (starting, or hung): the doctor says
    so instead of opening the camera the kiosk is using."""
    from appliance import instance_lock

    settings = make_settings(tmp_path / "data", camera_source=str(clip_path))
    store.open_db(settings.db_path).conn.close()
    with instance_lock.acquire(settings.data_dir):
        camera = doctor.run_checks(settings, camera_seconds=0.2)[0]
    assert camera.name == "camera" and camera.status == FAIL
    assert f"the kiosk (pid {os.getpid()}) is running" in camera.detail
    assert "read from the running kiosk" in camera.detail
    # once it stopped, the doctor opens the camera itself
    camera = doctor.run_checks(settings, camera_seconds=0.2)[0]
    assert camera.status == OK and "opened by doctor" in camera.detail
