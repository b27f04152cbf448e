"""Erasure reaches the outbox: a notification still waiting when its person is deleted goes out
without their name or face crop (e-mail and webhook), and the store keeps none of it."""

from __future__ import annotations

import numpy as np

from appliance import store
from tests.notify.servers import HttpReceiver, SmtpServer
from tests.notify.test_outbox import started_sender, statuses, write_events

NAME = "Ann Erasable"


def test_a_waiting_notification_loses_the_erased_persons_name_and_snapshot(make_settings, db_of):
    with SmtpServer() as smtp, HttpReceiver() as hook:
        settings = make_settings(
            notify_urls=smtp.url(),
            notify_on="access_granted",
            webhook_url=f"http://127.0.0.1:{hook.port}/in",
            webhook_secret="s3cret",
        )
        db = db_of(settings)
        sender = started_sender(settings, db)
        ann = store.create_person(db, NAME)
        crop = np.full((60, 50, 3), 128, np.uint8)
        [eid] = write_events(
            settings, [("access_granted", {"person_id": ann, "person_name": NAME})], crop=crop
        )
        snapshot = store.get_event(db, eid)["snapshot_path"]
        assert snapshot

        store.delete_person(db, ann)  # before the notify process got to it
        sender.drain(store.utc_now())

        assert statuses(db, "webhook") == ["sent"] and statuses(db, "notify:%") == ["sent"]
        event = hook.json(-1)
        assert event["id"] == eid and event["person_id"] == ann
        assert event["person_name"] is None and event["has_snapshot"] is False
        [mail] = smtp.messages
        assert NAME not in mail.as_string()
        assert not [p for p in mail.walk() if p.get_filename()]  # no face crop attached
        for row in db.execute("SELECT * FROM outbox"):
            assert NAME not in str(row)
