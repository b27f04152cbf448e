"""The kiosk's life around the pipeline: admin commands, a broken camera, a full disk, SIGTERM."""

from __future__ import annotations

import glob
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import cv2
import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from appliance import store
from appliance.camera import Frame, SourceError
from appliance.events import EventWriter
from appliance.kiosk import Kiosk
from appliance.settings import load_settings
from tests.conftest import start_cli


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
    env = {
        "FACEGATE_DATA_DIR": str(tmp_path / "data"),
        "FACEGATE_PIN_FACTORY": "mock",
        "FACEGATE_LIVENESS": "off",
    }
    proc = start_cli("run", "--source", str(clip_path), env=env, stdout=subprocess.PIPE)
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
    import appliance.gallery_feed

    monkeypatch.setattr(appliance.gallery_feed, "GALLERY_STALE_S", 0.5)
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


# --- life cycle: the door controller first and last ----------------------------------------------


def relay_left_energised(factory: MockFactory) -> MockPin:
    """GPIO17 as a killed kiosk leaves it: driven high (energised, active-high relay)."""
    pin = factory.pin(17)
    pin.function = "output"
    pin.state = True
    return pin


@pytest.mark.parametrize("missing", ["camera", "video"])
def test_a_kiosk_without_a_camera_makes_the_relay_safe_before_failing(
    tmp_path, engine, missing, monkeypatch
):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)  # at a terminal, not under systemd
    if missing == "camera" and glob.glob("/dev/video*"):
        pytest.skip("this machine has a camera")
    source = "0"
    if missing == "video":
        source = str(tmp_path / "notes.txt")
        Path(source).write_text("not a video")
    settings = load_settings(data_dir=tmp_path / "data", liveness="off")
    factory = MockFactory(pin_class=MockPin)
    relay = relay_left_energised(factory)
    with pytest.raises(SourceError):
        Kiosk(settings, source=source, pin_factory=factory, engine=engine, liveness=None)
    assert relay.state is False  # driven de-energised before the camera was even looked at


def test_a_kiosk_whose_models_fail_to_load_opened_the_door_first(tmp_path, monkeypatch):
    import appliance.kiosk

    settings = load_settings(
        data_dir=tmp_path / "data", liveness="off", exit_button_pin="GPIO23", unlock_seconds=0.2
    )
    factory = MockFactory(pin_class=MockPin)
    relay = relay_left_energised(factory)
    seen: dict = {}

    def models_that_fail(_settings):
        seen["relay while loading"] = relay.state
        factory.pin(23).drive_low()  # someone inside presses the exit button meanwhile
        seen["pulsed"] = _wait(lambda: relay.state is True, timeout=5)
        factory.pin(23).drive_high()
        raise RuntimeError("dlib shape predictor: unexpected end of file")

    monkeypatch.setattr(appliance.kiosk, "make_engine", models_that_fail)
    with pytest.raises(RuntimeError, match="shape predictor"):
        Kiosk(settings, source="rtsp://127.0.0.1:9/none", pin_factory=factory, liveness=None)
    assert seen == {"relay while loading": False, "pulsed": True}
    assert relay.state is False  # and safe again after the failed start


def test_exit_button_works_while_the_camera_reconnects(tmp_path, engine):
    settings = load_settings(
        data_dir=tmp_path / "data", liveness="off", exit_button_pin="GPIO23", unlock_seconds=0.2
    )
    factory = MockFactory(pin_class=MockPin)
    kiosk = Kiosk(
        settings,
        source="rtsp://127.0.0.1:9/none",
        pin_factory=factory,
        engine=engine,
        liveness=None,
    )
    thread = threading.Thread(target=kiosk.run)
    thread.start()
    try:
        db = store.open_db(settings.db_path)
        _wait(lambda: (store.get_status(db, "appliance") or {}).get("camera_ok") is False)
        factory.pin(23).drive_low()
        _wait(lambda: factory.pin(17).state is True)
        factory.pin(23).drive_high()
        _wait(lambda: factory.pin(17).state is False)  # the pulse ends on its own
        assert _wait(lambda: store.list_events(db, kinds=["exit_request"]))
    finally:
        kiosk.stop()
        thread.join(15)
    assert not thread.is_alive() and factory.pin(17).state is False


# --- the systemd watchdog --------------------------------------------------------------------


class NotifySocket:
    """A real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def next(self, timeout: float) -> str | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except TimeoutError:
            return None

    def wait_for(self, line: str, timeout: float = 30.0) -> list[str]:
        """Messages up to and including the first that has ``line``."""
        got = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.next(left)
            if message is None:
                break
            got.append(message)
            if line in message.splitlines():
                return got
        raise AssertionError(f"no {line} within {timeout} s; got {got}")

    def drain(self) -> list[str]:
        got = []
        while (message := self.next(0.01)) is not None:
            got.append(message)
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    import appliance.sd_notify

    monkeypatch.setattr(appliance.sd_notify, "PET_INTERVAL_S", 0.0)  # every pet is sent
    sock = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    yield sock
    sock.close()


#: Longer than two of the frame loop's 0.5 s waits for a frame: a loop that is alive and meant
#: to pet would have done so.
SILENCE_S = 1.2


class ScriptedCamera(threading.Thread):
    """Stands in for the CameraReader: one frame into the slot per ``feed()``, nothing else."""

    def __init__(self, kiosk: Kiosk, bgr) -> None:
        super().__init__(name="scripted-camera", daemon=True)
        self.slot, self.stop_event, self.bgr = kiosk.slot, kiosk.stop_event, bgr
        self.healthy, self.last_error = True, None
        self.frames_read = self.frames_skipped = 0  # the counters the kiosk logs at stop
        self._frames: queue.Queue[int] = queue.Queue()

    def feed(self) -> None:
        self._frames.put(1)

    def run(self) -> None:
        index = 0
        while not self.stop_event.is_set():
            try:
                self._frames.get(timeout=0.1)
            except queue.Empty:
                continue
            self.slot.put(Frame(index, index / 30.0, self.bgr), self.stop_event)
            index += 1
            self.frames_read = index
        self.slot.close()


def test_watchdog_is_petted_only_while_frames_flow_or_the_camera_reconnects(
    tmp_path, engine, clip_path, notify_socket
):
    cap = cv2.VideoCapture(str(clip_path))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    settings = load_settings(data_dir=tmp_path / "data", liveness="off")
    kiosk = Kiosk(
        settings,
        source="rtsp://127.0.0.1:9/none",
        pin_factory=MockFactory(pin_class=MockPin),
        engine=engine,
        liveness=None,
    )
    camera = kiosk.reader = ScriptedCamera(kiosk, bgr)
    hang, hung = threading.Event(), threading.Event()
    process = kiosk.pipeline.process

    def process_that_can_hang(*args, **kwargs):
        if hang.is_set():
            hung.set()
            release.wait()
        return process(*args, **kwargs)

    release = threading.Event()
    kiosk.pipeline.process = process_that_can_hang
    thread = threading.Thread(target=kiosk.run)
    thread.start()
    try:
        notify_socket.wait_for("READY=1")
        for _ in range(3):  # a pet per frame processed (the slot keeps only the newest frame)
            camera.feed()
            notify_socket.wait_for("WATCHDOG=1")
        # the camera claims to be fine but sends nothing: no pets (systemd would restart us)
        assert notify_socket.next(SILENCE_S) is None

        hang.set()
        camera.feed()
        assert hung.wait(10)
        notify_socket.drain()
        assert notify_socket.next(SILENCE_S) is None  # a hung frame loop is silent
        hang.clear()
        release.set()
        notify_socket.wait_for("WATCHDOG=1", timeout=10)  # alive again

        camera.healthy = False  # the camera is honestly reconnecting: the loop keeps petting
        notify_socket.drain()
        notify_socket.wait_for("WATCHDOG=1", timeout=5)
        notify_socket.wait_for("WATCHDOG=1", timeout=5)
    finally:
        release.set()
        kiosk.stop()
        thread.join(15)
    assert not thread.is_alive()
    assert "STOPPING=1" in "\n".join(notify_socket.drain())


def test_a_door_in_service_waits_for_a_missing_camera_with_the_door_working(
    tmp_path, engine, notify_socket
):
    """Under systemd a missing camera is waited for; exiting would take the exit button down."""
    if glob.glob("/dev/video*"):
        pytest.skip("this machine has a camera")
    settings = load_settings(
        data_dir=tmp_path / "data", liveness="off", exit_button_pin="GPIO23", unlock_seconds=0.2
    )
    factory = MockFactory(pin_class=MockPin)
    kiosk = Kiosk(settings, source="0", pin_factory=factory, engine=engine, liveness=None)
    thread = threading.Thread(target=kiosk.run)
    thread.start()
    try:
        notify_socket.wait_for("READY=1")
        notify_socket.wait_for("WATCHDOG=1", timeout=5)  # reconnecting honestly
        factory.pin(23).drive_low()
        _wait(lambda: factory.pin(17).state is True)
        factory.pin(23).drive_high()
    finally:
        kiosk.stop()
        thread.join(15)
    assert not thread.is_alive() and factory.pin(17).state is False
