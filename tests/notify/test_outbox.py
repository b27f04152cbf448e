"""The outbox end to end: the real event writer, the real SQLite file, a real SMTP server
(aiosmtpd) and a real HTTP receiver. Nothing is lost across a restart; failures wait and retry."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import numpy as np
import pytest

from appliance import store
from appliance.events import EventWriter
from notify import outbox
from notify.channels import SIGNATURE_HEADER
from notify.service import Sender, build_channels, notify_channel_name
from tests.notify.servers import HttpReceiver, SmtpServer, free_port


def write_events(settings, events, crop=None):
    """Events through the appliance's own writer, as the door writes them."""
    writer = EventWriter(
        settings.db_path,
        settings.door_name,
        snapshot_dir=settings.snapshot_dir if crop is not None else None,
    )
    writer.start()
    ids = [writer.emit(kind, crop=crop, **fields) for kind, fields in events]
    writer.close()
    assert writer.written == len(events)
    return ids


def started_sender(settings, db):
    sender = Sender(settings, db, build_channels(settings))
    sender.start(store.utc_now())
    return sender


def statuses(db, channel):
    return [
        r[0]
        for r in db.execute("SELECT status FROM outbox WHERE channel LIKE ? ORDER BY id", [channel])
    ]


def test_outbox_rows_come_with_the_event_only_for_configured_kinds(make_settings, db_of):
    settings = make_settings(
        notify_urls="json://127.0.0.1:9/x",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="s3cret",
    )
    db = db_of(settings)
    started_sender(settings, db)
    write_events(settings, [("access_granted", {"person_name": "Ann"}), ("door_forced", {})])
    rows = db.execute(
        "SELECT substr(o.channel, 1, 7), e.kind FROM outbox o JOIN events e ON e.id = o.event_id "
        "ORDER BY o.channel, e.kind"
    ).fetchall()
    # people hear about the forced door only (the default kinds); the webhook gets everything
    assert rows == [
        ("notify:", "door_forced"),
        ("webhook", "access_granted"),
        ("webhook", "door_forced"),
    ]


def test_no_outbox_rows_while_nothing_is_configured(make_settings, db_of):
    settings = make_settings()
    db = db_of(settings)
    started_sender(settings, db)
    write_events(settings, [("door_forced", {})])
    assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_email_says_what_where_when_who_with_the_snapshot(make_settings, db_of):
    with SmtpServer() as smtp:
        settings = make_settings(notify_urls=smtp.url(), notify_on="access_granted,door_forced")
        db = db_of(settings)
        sender = started_sender(settings, db)
        crop = np.full((60, 50, 3), 128, np.uint8)
        write_events(settings, [("access_granted", {"person_name": "Ann Smith"})], crop=crop)
        event = store.list_events(db)[0]
        sender.drain(store.utc_now())
        assert len(smtp.messages) == 1
        mail = smtp.messages[0]
        assert mail["Subject"] == "[Facegate] Access granted - front-door"
        text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
        body = text.get_payload(decode=True).decode()
        local = store.parse_iso(event["ts"]).astimezone(settings.tz)
        assert "Who: Ann Smith" in body and "at door front-door" in body
        assert local.strftime("%Y-%m-%d %H:%M:%S CET") in body  # the door's zone, not UTC
        jpgs = [p for p in mail.walk() if p.get_filename() == f"{event['id']}.jpg"]
        assert jpgs and jpgs[0].get_payload(decode=True)[:2] == b"\xff\xd8"
        assert statuses(db, "notify:%") == ["sent"]


def test_smtp_down_waits_in_the_outbox_and_is_sent_after_a_restart(make_settings, db_of):
    port = free_port()  # nobody listens yet
    url = f"mailto://127.0.0.1:{port}?from=door@example.com&to=guard@example.com&smtp=127.0.0.1"
    settings = make_settings(notify_urls=url)
    db = db_of(settings)
    sender = started_sender(settings, db)
    write_events(settings, [("door_forced", {})])
    now = store.utc_now()
    sender.drain(now)
    row = db.execute("SELECT status, attempts, next_at, last_error FROM outbox").fetchone()
    assert row[0] == "pending" and row[1] == 1 and row[3]
    wait = store.parse_iso(row[2]) - now
    assert timedelta(seconds=4.99) < wait <= timedelta(seconds=5)  # first backoff (ms kept)
    sender.drain(now + timedelta(seconds=1))  # not due yet: no second try
    assert db.execute("SELECT attempts FROM outbox").fetchone()[0] == 1
    sender.close()

    # the process restarts; meanwhile the mail server came up on that port
    with SmtpServer(port=port) as smtp:
        sender = started_sender(settings, db)
        sender.drain(now + timedelta(seconds=6))
        assert len(smtp.messages) == 1 and "DOOR FORCED OPEN" in smtp.messages[0]["Subject"]
    assert statuses(db, "notify:%") == ["sent"]


def test_a_crash_mid_send_sends_again_at_start(make_settings, db_of):
    with SmtpServer() as smtp:
        settings = make_settings(notify_urls=smtp.url())
        db = db_of(settings)
        started_sender(settings, db)
        write_events(settings, [("camera_down", {})])
        # the previous process claimed the row and died before marking it sent
        oid = db.execute("SELECT id FROM outbox").fetchone()[0]
        assert outbox.claim(db, [oid], store.utc_now()) == [oid]
        assert (
            outbox.due(db, notify_channel_name(smtp.url()), store.utc_now()) == []
        )  # a claimed row is not due
        sender = started_sender(settings, db)  # restart: recover() puts it back
        sender.drain(store.utc_now())
        assert len(smtp.messages) == 1
        assert statuses(db, "notify:%") == ["sent"]
        sender.drain(store.utc_now() + timedelta(hours=1))
        assert len(smtp.messages) == 1  # sent rows are never sent again


def test_a_flood_of_one_kind_becomes_one_summary(make_settings, db_of):
    with SmtpServer() as smtp:
        settings = make_settings(
            notify_urls=smtp.url(), notify_on="access_denied", notify_rate_limit=3
        )
        db = db_of(settings)
        sender = started_sender(settings, db)
        write_events(settings, [("access_denied", {"reason": "unknown_face"})] * 12)
        now = store.utc_now()
        sender.drain(now)
        subjects = [m["Subject"] for m in smtp.messages]
        assert subjects == ["[Facegate] Access denied - front-door"] * 2 + [
            "[Facegate] 10 x Access denied - front-door"
        ]
        # the window is full: the next one waits for a free slot, then goes
        write_events(settings, [("access_denied", {"reason": "unknown_face"})])
        sender.drain(now + timedelta(minutes=1))
        assert len(smtp.messages) == 3
        sender.drain(now + timedelta(minutes=11))
        assert len(smtp.messages) == 4
        assert statuses(db, "notify:%").count("summarized") == 10


def test_webhook_is_signed_json_in_the_api_shape_and_retried(make_settings, db_of):
    with HttpReceiver(status=503) as hook:
        settings = make_settings(
            webhook_url=f"http://127.0.0.1:{hook.port}/in", webhook_secret="s3cret"
        )
        db = db_of(settings)
        sender = started_sender(settings, db)
        [eid] = write_events(
            settings, [("access_granted", {"person_name": "Ann", "distance": 0.31})]
        )
        now = store.utc_now()
        sender.drain(now)
        assert statuses(db, "webhook") == ["pending"]  # refused: retried later
        hook.status = 200
        sender.drain(now + timedelta(seconds=5))
        assert statuses(db, "webhook") == ["sent"]
        headers, body = hook.requests[-1]
        expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER] == expected
        event = hook.json(-1)
        assert event["id"] == eid and event["kind"] == "access_granted"
        assert event["person_name"] == "Ann" and event["distance"] == 0.31
        from admin_api.routes.events import event_json

        assert set(event) == set(event_json(store.get_event(db, eid)))


def test_an_erased_event_is_not_sent(make_settings, db_of):
    with HttpReceiver() as hook:
        settings = make_settings(webhook_url=f"http://127.0.0.1:{hook.port}/in", webhook_secret="k")
        db = db_of(settings)
        sender = started_sender(settings, db)
        [eid] = write_events(settings, [("access_granted", {"person_name": "Ann"})])
        with db.conn:
            db.execute("DELETE FROM events WHERE id = ?", [eid])
        sender.drain(store.utc_now())
        assert hook.requests == [] and statuses(db, "webhook") == ["failed"]


@pytest.mark.parametrize(
    "url",
    [
        "twilio://ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@15551234567/15557654321",
        "tgram://123456789:abcdefghijklmnopqrstuvwxyzABCDEFGHI/-100123456",
        "ntfys://ntfy.sh/facegate-topic",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
    ],
)
def test_hosted_service_urls_parse_and_are_masked(url):
    import apprise

    from notify.message import mask_url

    assert apprise.Apprise.instantiate(url) is not None
    masked = mask_url(url)
    assert "bbbbbbbb" not in masked and "abcdefgh" not in masked and "TIiajk" not in masked


def test_a_hosted_service_stand_in_receives_the_json_notification(make_settings, db_of):
    """Apprise's json:// plugin posts to our local stand-in like a hosted service would."""
    with HttpReceiver() as standin:
        settings = make_settings(notify_urls=f"json://127.0.0.1:{standin.port}/notify")
        db = db_of(settings)
        sender = started_sender(settings, db)
        write_events(settings, [("disk_low", {"details": {"free_percent": 4.2}})])
        sender.drain(store.utc_now())
        payload = standin.json(0)
        assert payload["title"] == "[Facegate] Disk nearly full - front-door"
        assert "Free percent: 4.2" in payload["message"]


def test_one_refusing_url_never_makes_the_others_receive_twice(make_settings, db_of):
    dead = free_port()
    with SmtpServer() as smtp:
        bad = f"mailto://127.0.0.1:{dead}?from=a@example.com&to=b@example.com&smtp=127.0.0.1"
        settings = make_settings(notify_urls=f"{smtp.url()},{bad}")
        db = db_of(settings)
        sender = started_sender(settings, db)
        write_events(settings, [("door_held_open", {"details": {"open_seconds": 31}})])
        now = store.utc_now()
        for minutes in (0, 1, 2, 5, 10):
            sender.drain(now + timedelta(minutes=minutes))
        assert len(smtp.messages) == 1
        good, refused = notify_channel_name(smtp.url()), notify_channel_name(bad)
        assert statuses(db, good) == ["sent"] and statuses(db, refused) == ["pending"]
        attempts = db.execute("SELECT attempts FROM outbox WHERE channel = ?", [refused])
        assert attempts.fetchone()[0] == 5


def test_old_finished_rows_are_purged_pending_ones_kept(make_settings, db_of):
    with HttpReceiver() as hook:
        settings = make_settings(webhook_url=f"http://127.0.0.1:{hook.port}/in", webhook_secret="k")
        db = db_of(settings)
        sender = started_sender(settings, db)
        write_events(settings, [("access_granted", {})] * 2)
        first = db.execute("SELECT min(id) FROM outbox").fetchone()[0]
        outbox.claim(db, [first], store.utc_now())
        outbox.mark_sent(db, [first], store.utc_now())
        assert outbox.purge(db, store.utc_now() + timedelta(days=1)) == 1
        assert statuses(db, "webhook") == ["pending"]
        sender.drain(store.utc_now())
        assert len(hook.requests) == 1


def test_ntfy_self_hosted_stand_in_gets_the_alert_with_its_snapshot(make_settings, db_of):
    """ntfy is one hosted service Apprise can point at any host: the real plugin talks to a local
    stand-in, uploading the snapshot with the title and message."""
    from urllib.parse import parse_qs, urlsplit

    with HttpReceiver() as ntfy:
        settings = make_settings(
            notify_urls=f"ntfy://127.0.0.1:{ntfy.port}/facegate-alerts",
            notify_on="access_denied",
        )
        db = db_of(settings)
        sender = started_sender(settings, db)
        crop = np.full((40, 40, 3), 200, np.uint8)
        [eid] = write_events(settings, [("access_denied", {"reason": "unknown_face"})], crop=crop)
        sender.drain(store.utc_now())
        [(headers, body)] = ntfy.requests
        url = urlsplit(headers["Path"])
        query = parse_qs(url.query)
        assert url.path == "/facegate-alerts" and query["filename"] == [f"{eid}.jpg"]
        assert query["title"] == ["[Facegate] Access denied - front-door"]
        assert "Reason: unknown_face" in query["message"][0]
        assert body[:2] == b"\xff\xd8"
        assert statuses(db, "notify:%") == ["sent"]


def test_a_down_webhook_costs_one_try_per_pass_not_one_per_message(make_settings, db_of):
    port = free_port()  # nobody listens
    settings = make_settings(webhook_url=f"http://127.0.0.1:{port}/in", webhook_secret="k")
    db = db_of(settings)
    sender = started_sender(settings, db)
    write_events(settings, [("access_granted", {})] * 20)
    now = store.utc_now()
    sender.drain(now)
    tries = [r[0] for r in db.execute("SELECT attempts FROM outbox ORDER BY id")]
    assert tries == [1] + [0] * 19  # the rest wait with the first, no try counted
    assert outbox.due(db, "webhook", now + timedelta(seconds=4)) == []
    with HttpReceiver() as hook:
        sender.close()
        settings = make_settings(webhook_url=f"http://127.0.0.1:{hook.port}/in", webhook_secret="k")
        sender = started_sender(settings, db)
        sender.drain(now + timedelta(seconds=5))
        assert [hook.json(i)["kind"] for i in range(20)] == ["access_granted"] * 20
        ids = [hook.json(i)["id"] for i in range(20)]
        assert ids == [r[0] for r in db.execute("SELECT id FROM events ORDER BY ts, rowid")]


def test_an_unexpected_send_error_is_stored_without_url_secrets(make_settings, db_of):
    """Admins read last_error in /notifications/recent: a library's error that quotes a URL with
    its password must not put the password there."""
    port = free_port()
    settings = make_settings(notify_urls=f"json://127.0.0.1:{port}/hook")
    db = db_of(settings)
    sender = started_sender(settings, db)
    write_events(settings, [("door_forced", {})])
    channel = notify_channel_name(f"json://127.0.0.1:{port}/hook")
    rows = outbox.due(db, channel, store.utc_now())
    assert rows

    def send():
        raise RuntimeError("cannot reach smtp://guard:hunter2@mail.example.com:465")

    sender._send_one(channel, rows[:1], send, store.utc_now())
    error = db.execute("SELECT last_error FROM outbox WHERE last_error IS NOT NULL").fetchone()[0]
    assert "hunter2" not in error and "***@mail.example.com" in error
    sender.close()
