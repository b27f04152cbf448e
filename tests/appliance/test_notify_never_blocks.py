"""The door decides at full speed whatever the receivers do: a real kiosk plays the real clip while
the notify process is stuck on a mail server that holds every message, the MQTT broker is down
and the webhook refuses. Every decision is written; the messages wait in the outbox and go out
once the receivers answer."""

from __future__ import annotations

import threading

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from appliance import store
from appliance.kiosk import Kiosk
from appliance.settings import load_settings
from notify.service import Sender, build_channels, notify_channel_name
from tests.notify.servers import HttpReceiver, SmtpServer, free_port

pytestmark = pytest.mark.slow


def test_the_door_decides_while_every_receiver_is_stuck(enrolled_settings, engine, clip_path):
    release = threading.Event()
    with SmtpServer(hold=release) as smtp, HttpReceiver(status=500) as hook:
        settings = load_settings(
            data_dir=enrolled_settings.data_dir,
            pin_factory="mock",
            liveness="off",
            store_event_snapshots=True,
            notify_on="access_granted,access_denied",
            notify_urls=smtp.url(),
            webhook_url=f"http://127.0.0.1:{hook.port}/in",
            webhook_secret="k",
            mqtt_url=f"mqtt://127.0.0.1:{free_port()}",  # nobody there
        )
        db = store.open_db(settings.db_path)
        sender = Sender(settings, db, build_channels(settings))
        stop = threading.Event()
        notify = threading.Thread(target=sender.run, args=(stop,))
        notify.start()
        try:
            _wait_for(lambda: db.execute("SELECT count(*) FROM outbox_channels").fetchone()[0] == 3)
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
            # the whole clip was decided while the mail server held the first message
            assert smtp.waiting.is_set() and not release.is_set() and smtp.messages == []
            decided = kiosk.outcomes
            assert any(o.granted for o in decided)
            logged = store.list_events(db, kinds=["access_granted", "access_denied"], limit=1000)
            assert len(logged) == len(decided)
            channel = notify_channel_name(smtp.url())
            waiting = db.execute(
                "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
                " AND channel IN (?, 'mqtt', 'webhook')",
                [channel],
            ).fetchone()[0]
            assert waiting == 3 * len(decided)  # e-mail, webhook and MQTT for each decision
            release.set()  # the mail server answers again
            _wait_for(lambda: len(smtp.messages) >= 1, timeout=60)
            assert any(p.get_filename() for p in smtp.messages[0].walk())  # the snapshot
        finally:
            release.set()
            stop.set()
            notify.join(60)
            sender.close()
            db.conn.close()


def _wait_for(predicate, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
