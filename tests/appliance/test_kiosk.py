"""The kiosk's life around the pipeline: admin commands, a broken camera, a full disk, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from appliance import store
from appliance.events import EventWriter
from appliance.loop import Kiosk
from appliance.settings import load_settings
from tests.conftest import REPO_ROOT


def _wait(predicate, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


@pytest.fixture
def broken_camera_kiosk(tmp_path, engine):
    """A kiosk whose camera is an RTSP address nothing answers on."""
    settings = load_settings(data_dir=tmp_path / "data", liveness="off", unlock_seconds=0.3)
    factory = MockFactory(pin_class=MockPin)
    kiosk = Kiosk(
        settings,
        source="rtsp://127.0.0.1:9/none",
        pin_factory=factory,
        engine=engine,
        liveness=None,
    )
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", kiosk.run()))
    thread.start()
    yield kiosk, settings, factory
    kiosk.stop()
    thread.join(15)
    assert not thread.is_alive()
    assert result["rc"] == 0


def test_broken_camera_keeps_the_door_locked_and_reports_it(broken_camera_kiosk):
    kiosk, settings, factory = broken_camera_kiosk
    db = store.open_db(settings.db_path)
    status = _wait(lambda: store.get_status(db, "appliance"))
    assert status["camera_ok"] is False and status["running"] is True
    assert status["locked"] is True
    assert factory.pin(17).state is False


def test_unlock_command_is_carried_out_and_logged(broken_camera_kiosk):
    kiosk, settings, factory = broken_camera_kiosk
    db = store.open_db(settings.db_path)
    cmd = store.enqueue_command(db, "unlock", requested_by="alice")
    done = _wait(
        lambda: (
            store.get_command(db, cmd)["status"] not in ("pending", "running")
            and store.get_command(db, cmd)
        )
    )
    assert done["status"] == "done"
    states = [s.state for s in factory.pin(17).states]
    assert True in states  # the relay was pulsed
    _wait(lambda: factory.pin(17).state is False)  # and locked again after the pulse
    events = _wait(lambda: store.list_events(db, kinds=["remote_unlock"]))
    assert events[0]["details"] == {"requested_by": "alice"}


def test_stale_command_is_not_carried_out(broken_camera_kiosk):
    kiosk, settings, factory = broken_camera_kiosk
    db = store.open_db(settings.db_path)
    with db.conn:
        db.execute(
            "INSERT INTO commands (kind, args, requested_by, created_at) VALUES "
            "('unlock', '{}', 'bob', '2020-01-01T00:00:00.000+00:00')"
        )
    cmd = db.execute("SELECT max(id) FROM commands").fetchone()[0]
    done = _wait(
        lambda: (
            store.get_command(db, cmd)["status"] not in ("pending", "running")
            and store.get_command(db, cmd)
        )
    )
    assert done["status"] == "expired"
    assert all(s.state is False for s in factory.pin(17).states)


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MiB file system (tmpfs), so "disk full" is the kernel's ENOSPC, not a mock."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_keeps_events_until_they_can_be_written(tiny_disk):
    path = tiny_disk / "facegate.db"
    store.open_db(path).conn.close()
    filler = tiny_disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # take every free byte
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    writer = EventWriter(path, "door-1")
    writer.start()
    ids = [
        writer.emit("access_denied", reason="unknown_face", details={"pad": "x" * 300})
        for _ in range(300)
    ]
    _wait(lambda: writer.failures > 0)
    assert writer.last_error  # "database or disk is full" / "disk I/O error"
    assert writer.is_alive()  # the writer keeps the events and retries
    filler.unlink()  # space comes back
    _wait(lambda: writer.written == 300, timeout=30)
    writer.close()
    db = store.open_db(path)
    stored = {r[0] for r in db.execute("SELECT id FROM events")}
    assert stored == set(ids)  # none lost, none twice


def test_sigterm_stops_cleanly_with_the_relay_safe(tmp_path, clip_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        FACEGATE_DATA_DIR=str(tmp_path / "data"),
        FACEGATE_PIN_FACTORY="mock",
        FACEGATE_LIVENESS="off",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--source", str(clip_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        settings = load_settings(data_dir=tmp_path / "data")
        _wait(lambda: settings.db_path.exists(), timeout=60)
        db = store.open_db(settings.db_path)
        _wait(lambda: (store.get_status(db, "appliance") or {}).get("camera_ok"), timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "relay de-energised" in err and "stopped" in err
    assert store.get_status(db, "appliance")["running"] is False


def test_unreadable_store_changes_hold_every_grant(broken_camera_kiosk, monkeypatch):
    """A change to who may enter that cannot be read (a malformed row) must not leave the door
    deciding on the old gallery for ever: after a grace period nobody is let in."""
    import appliance.loop

    monkeypatch.setattr(appliance.loop, "GALLERY_STALE_S", 0.5)
    kiosk, settings, factory = broken_camera_kiosk
    db = store.open_db(settings.db_path)
    _wait(lambda: store.get_status(db, "appliance"))  # running on a readable store
    with db.conn:
        db.execute(
            "INSERT INTO schedules (id, name, windows, created_at, updated_at) "
            "VALUES ('s1', 'broken', '{not json', 't', 't')"
        )
        pid = store.create_person(db, "Revoked Later", schedule_id="s1")
    status = _wait(
        lambda: (
            (store.get_status(db, "appliance") or {}).get("hold_reason")
            and store.get_status(db, "appliance")
        )
    )
    assert status["hold_reason"] == "gallery_stale"
    with db.conn:
        db.execute("UPDATE schedules SET windows = '[]' WHERE id = 's1'")
    _wait(
        lambda: (
            (store.get_status(db, "appliance") or {}).get("hold_reason") is None
            and store.get_status(db, "appliance")["gallery_version"] == store.gallery_version(db)
        )
    )
    assert store.get_person(db, pid)["schedule_id"] == "s1"


def test_a_cameras_last_frame_is_not_kept_after_stop(tmp_path, engine):
    settings = load_settings(data_dir=tmp_path / "data", liveness="off")
    kiosk = Kiosk(
        settings,
        source="rtsp://127.0.0.1:9/none",
        pin_factory=MockFactory(pin_class=MockPin),
        engine=engine,
        liveness=None,
    )
    thread = threading.Thread(target=kiosk.run)
    thread.start()
    db = store.open_db(settings.db_path)
    _wait(lambda: store.get_status(db, "appliance"))
    frame = settings.run_dir / "latest.jpg"
    frame.parent.mkdir(parents=True, exist_ok=True)
    frame.write_bytes(b"\xff\xd8 a face at the door")
    kiosk.stop()
    thread.join(15)
    assert not frame.exists()
