"""A running kiosk publishes its machine health and holds the lock that makes restore refuse."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from appliance import store
from appliance.backup import BackupError, backup, restore
from appliance.kiosk import Kiosk
from appliance.settings import load_settings


def test_running_kiosk_reports_health_and_blocks_restore(tmp_path, engine):
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
    try:
        db = store.open_db(settings.db_path)
        deadline = time.monotonic() + 20
        status = None
        while status is None and time.monotonic() < deadline:
            status = store.get_status(db, "appliance")
            time.sleep(0.05)
        assert status is not None
        assert status["disk_free_mb"] > 0
        assert "cpu_temp_c" in status and "throttled" in status  # None where unreadable
        assert status["last_frame_at"] is None  # no camera frame ever arrived
        db.conn.close()
        saved = backup(settings.db_path, tmp_path / "b.db")
        with pytest.raises(BackupError, match="in use by the kiosk"):
            restore(saved.path, settings.db_path)
    finally:
        kiosk.stop()
        thread.join(15)
    assert restore(saved.path, settings.db_path).schema_version > 0  # stopped: allowed
