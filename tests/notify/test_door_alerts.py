"""The door raises an alert; the notify process (not the door) delivers it.

A real kiosk whose camera never answers writes ``camera_down`` to the entry log; the outbox row
comes with it, and the sender posts it to a real HTTP receiver. While the receiver refuses, the
door goes on and the message waits.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from gpiozero.pins.mock import MockFactory, MockPin

from appliance import store
from appliance.kiosk import Kiosk
from appliance.settings import load_settings
from notify.service import Sender, build_channels
from tests.notify.servers import HttpReceiver


def _wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_camera_down_reaches_the_webhook_through_the_outbox(tmp_path, engine):
    with HttpReceiver(status=500) as hook:
        settings = load_settings(
            data_dir=tmp_path / "data",
            liveness="off",
            alert_camera_down_seconds=0.5,
            webhook_url=f"http://127.0.0.1:{hook.port}/in",
            webhook_secret="k",
        )
        db = store.open_db(settings.db_path)
        sender = Sender(settings, db, build_channels(settings))
        sender.start(store.utc_now())  # notify declared its channels before the door ran
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
            _wait(lambda: store.list_events(db, kinds=["camera_down"]))
            sender.drain(store.utc_now())  # the receiver refuses: the row waits
            status = db.execute("SELECT status, attempts FROM outbox").fetchone()
            assert status == ("pending", 1)
            assert kiosk.status()["running"] is True  # the door never waited on the receiver
            hook.status = 204
            sender.drain(store.utc_now() + timedelta(seconds=6))
            assert hook.json(-1)["kind"] == "camera_down"
            assert hook.json(-1)["reason"] == "no_frames"
        finally:
            kiosk.stop()
            thread.join(15)
            sender.close()
            db.conn.close()
        assert len(store.list_events(store.open_db(settings.db_path), kinds=["camera_down"])) == 1
