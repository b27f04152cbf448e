"""Secrets stay out of logs and status rows; files holding faces or logs are owner-only."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPin
from loguru import logger

from appliance import store
from appliance.enroll import enrol
from appliance.kiosk import Kiosk
from appliance.logs import configure_logging
from appliance.settings import load_settings
from tests.appliance.conftest import photos_of
from tests.conftest import start_cli

PASSWORD = "s3cret-Pw9"


def _wait(predicate, timeout=60.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _all_bytes(folder) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_a_camera_password_is_never_logged_nor_stored(tmp_path) -> None:
    data, log_file = tmp_path / "data", tmp_path / "logs" / "facegate.log"
    env = {
        "FACEGATE_DATA_DIR": str(data),
        "FACEGATE_PIN_FACTORY": "mock",
        "FACEGATE_LIVENESS": "off",
        "FACEGATE_LOG_FILE": str(log_file),
        "FACEGATE_CAMERA_SOURCE": f"rtsp://door:{PASSWORD}@127.0.0.1:9/stream",
    }
    proc = start_cli(
        "run",
        env=env,
        stdout=subprocess.PIPE,
        umask=0o022,  # the usual umask: files would be world-readable unless made private
    )
    try:
        settings = load_settings(data_dir=data)
        _wait(lambda: settings.db_path.exists())
        db = store.open_db(settings.db_path)  # waits on the appliance's migration, if running
        status = _wait(lambda: store.get_status(db, "appliance"))
        _wait(lambda: log_file.exists() and "running" in log_file.read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert status["camera_source"] == "rtsp://***@127.0.0.1:9/stream"
    assert "rtsp://***@127.0.0.1:9/stream" in err  # the source is still named, masked
    assert PASSWORD not in out + err
    assert PASSWORD.encode() not in log_file.read_bytes()
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert PASSWORD.encode() not in _all_bytes(data)  # the status row, and any other file
    assert _mode(log_file) == 0o600
    assert _mode(log_file.parent) == 0o700


def test_tracebacks_in_the_log_do_not_show_local_variables(tmp_path) -> None:
    log_file = tmp_path / "facegate.log"
    configure_logging(load_settings(data_dir=tmp_path / "data", log_file=log_file))
    try:

        def dial(token: str) -> None:
            raise ConnectionError("refused")

        def connect() -> None:
            token = "fg_local_secret_value"
            dial(token)  # diagnose would print the value of token under this line

        try:
            connect()
        except ConnectionError:
            logger.exception("camera failed")
        logger.complete()
    finally:
        logger.remove()
        logger.configure(patcher=None, extra={})
        logger.add(sys.stderr)
    text = log_file.read_text()
    assert "camera failed" in text and "ConnectionError: refused" in text
    assert "fg_local_secret_value" not in text


def test_snapshots_and_the_live_frame_are_owner_only(
    tmp_path, engine, probes_dir, people_dir
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(10):  # an enrolled person in front of the door for a few frames
        shutil.copy(probes_dir / "kit_harington__1.jpg", frames / f"{i:02d}.jpg")
    settings = load_settings(data_dir=tmp_path / "data", liveness="off", store_event_snapshots=True)
    db = store.open_db(settings.db_path)
    enrol(db, engine, settings, photos_of(people_dir, "kit_harington"), name="Kit")
    kiosk = Kiosk(
        settings,
        source=str(frames),
        fast=True,
        once=True,
        pin_factory=MockFactory(pin_class=MockPin),
        engine=engine,
        liveness=None,
    )
    old = os.umask(0o022)
    try:
        assert kiosk.run() == 0
    finally:
        os.umask(old)
    snapshots = [e["snapshot_path"] for e in store.list_events(db) if e["snapshot_path"]]
    assert snapshots, "no decision with a snapshot"
    for path in snapshots:
        assert _mode(settings.snapshot_dir / os.path.basename(path)) == 0o600
    assert _mode(settings.snapshot_dir) == 0o700
    live = settings.run_dir / "latest.jpg"
    if live.exists():  # a finite source's last frame may be cleared on stop
        assert _mode(live) == 0o600
    assert _mode(settings.db_path) == 0o600
    # the status row names the last person by id only (erasure: it is rewritten constantly)
    last = store.get_status(db, "appliance")["last_decision"]
    assert last["kind"] == "access_granted" and last["person_id"]
    assert "person_name" not in last


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_write_private_is_owner_only_whatever_the_umask(tmp_path, umask: int) -> None:
    from appliance.private import write_private

    target = tmp_path / "run" / "latest.jpg"
    target.parent.mkdir()
    target.write_bytes(b"old")
    os.chmod(target, 0o644)  # a file from before this fix
    old = os.umask(umask)
    try:
        write_private(target, b"\xff\xd8new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"\xff\xd8new" and _mode(target) == 0o600


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/live", "rtsp://***@10.0.0.5:554/live"),
        ("rtsp://admin:p@ss@10.0.0.5/live", "rtsp://***@10.0.0.5/live"),  # "@" not encoded
        ("source rtsp://u:pw@cam ended", "source rtsp://***@cam ended"),
        (
            "http://cam/snapshot.cgi?user=admin&pwd=s3cret&ch=1",
            "http://cam/snapshot.cgi?user=admin&pwd=***&ch=1",
        ),
        ("http://cam/video?Password=s3cret", "http://cam/video?Password=***"),
        ("rtsp://10.0.0.5/live and mail@example.org", "rtsp://10.0.0.5/live and mail@example.org"),
        ("/dev/video0", "/dev/video0"),
    ],
)
def test_camera_urls_are_masked(text: str, shown: str) -> None:
    from appliance.redact import redact

    assert redact(text) == shown
    assert redact({"a": [text]}) == {"a": [shown]}
