"""The sender loop: every second, send what is due on each channel, retry what failed.

Channels: one per notification URL (``notify:<hash of the URL>``, so a URL that refuses never makes
the others receive a message twice, and reordering the URLs keeps their history), ``webhook`` and
``mqtt``. ``Sender.drain(now)`` is one pass over the outbox (tests call it with their own clock);
``run(stop)`` gives each channel its own thread and store connection, so a slow mail server never
holds back the webhook or MQTT, and repeats until the stop event is set.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils
from loguru import logger

from appliance.redact import redact
from appliance.settings import Settings
from appliance.store import open_db, parse_iso, put_status, utc_now
from notify import message, outbox
from notify.channels import AppriseChannel, SendError, WebhookChannel
from notify.plan import backoff_seconds, plan_rate

POLL_S = 1.0
PURGE_EVERY_S = 3600.0
KEEP_DONE = timedelta(days=30)  # sent, failed and dropped rows are kept this long for the record


def notify_channel_name(url: str) -> str:
    """The outbox channel of one notification URL: stable, and no secret in the store."""
    return "notify:" + hashlib.sha256(url.encode()).hexdigest()[:12]


def is_people_channel(name: str) -> bool:
    return name.startswith("notify:")


def build_channels(settings: Settings) -> dict[str, Any]:
    """The channels the settings configure, by outbox channel name."""
    channels: dict[str, Any] = {}
    for number, url in enumerate(settings.notify_url_list, start=1):
        check_apprise_url(url, number)
        channels[notify_channel_name(url)] = AppriseChannel([url])
    if settings.webhook_url and settings.webhook_secret:
        channels["webhook"] = WebhookChannel(
            settings.webhook_url.get_secret_value(), settings.webhook_secret.get_secret_value()
        )
    if settings.mqtt_url:
        from notify.mqtt import MqttChannel

        channels["mqtt"] = MqttChannel(settings)
    return channels


class ConfigError(ValueError):
    """A notification setting cannot work; the message names it (secrets masked)."""


def check_apprise_url(url: str, number: int) -> None:
    """Refuse at start-up a URL Apprise cannot use, rather than retry it for two days."""
    import apprise

    if apprise.Apprise.instantiate(url) is None:
        raise ConfigError(
            f"FACEGATE_NOTIFY_URLS: entry {number} ({message.mask_url(url)}) is not a URL "
            "Apprise knows (see https://github.com/caronc/apprise/wiki)"
        )


class Sender:
    def __init__(
        self, settings: Settings, db: sqlite_utils.Database, channels: dict[str, Any]
    ) -> None:
        self.s = settings
        self.db = db
        self.channels = channels
        self.stop = threading.Event()  # set by run()'s caller: a pass ends between two sends
        self.tz = settings.tz
        self.window = timedelta(minutes=settings.notify_rate_window_minutes)
        self.give_up = timedelta(hours=settings.notify_give_up_hours)

    def start(self, now: datetime) -> None:
        """Declare the channels (the trigger then queues rows for them) and recover a crash."""
        outbox.configure_channels(
            self.db,
            {
                name: (self.s.notify_kinds if is_people_channel(name) else None)
                for name in self.channels
            },
            now,
        )
        again = outbox.recover(self.db)
        if again:
            logger.warning("{} message(s) were being sent when we stopped: sending again", again)

    def drain(self, now: datetime) -> int:
        """One pass: send everything due now on every channel; returns rows handled."""
        handled = 0
        for name, channel in self.channels.items():
            try:
                handled += self._drain_channel(name, channel, now)
            except Exception:  # a store hiccup: the rows stay pending for the next pass
                logger.exception("outbox pass for {} failed", name)
        return handled

    def _drain_channel(self, name: str, channel: Any, now: datetime) -> int:
        ready = getattr(channel, "ready", None)
        if ready is not None and not ready():
            return 0  # a broker away: rows wait untouched (no try counted) until it is back
        rows = outbox.due(self.db, name, now, limit=200)
        if not rows:
            return 0
        live = []
        for row in rows:
            if row["id"] is None:  # the event was erased meanwhile
                outbox.mark_failed(self.db, [row["outbox_id"]], "event no longer in the log")
            elif now - parse_iso(row["queued_at"]) > self.give_up:
                outbox.mark_failed(self.db, [row["outbox_id"]], "gave up: too old")
                logger.error(
                    "{} message for event {} given up after {}", name, row["id"], self.give_up
                )
            else:
                live.append(row)
        if is_people_channel(name):
            self._send_to_people(name, channel, live, now)
        else:
            for i, row in enumerate(live):
                if self.stop.is_set():
                    break
                retry_at = self._send_one(
                    name, [row], lambda r=row: channel.send(message.event_json(r)), now
                )
                if retry_at is not None:  # the receiver is down: the rest wait with this one
                    outbox.defer(self.db, [r["outbox_id"] for r in live[i + 1 :]], retry_at)
                    break
        return len(rows)

    def _send_to_people(
        self, name: str, channel: AppriseChannel, rows: list[dict], now: datetime
    ) -> None:
        by_kind: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_kind[row["kind"]].append(row)
        untried = {r["outbox_id"] for r in rows}
        for kind, group in by_kind.items():
            if self.stop.is_set():
                return
            sent = outbox.sent_times(self.db, name, kind, now, self.window)
            plan = plan_rate(
                [r["outbox_id"] for r in group], sent, now, self.s.notify_rate_limit, self.window
            )
            if plan.wait_until is not None:
                outbox.defer(self.db, [r["outbox_id"] for r in group], plan.wait_until)
                untried -= {r["outbox_id"] for r in group}
                continue
            by_id = {r["outbox_id"]: r for r in group}
            sends = [
                (
                    [by_id[oid]],
                    lambda r=by_id[oid]: channel.send(message.for_event(r, self.tz)),
                    "sent",
                )
                for oid in plan.single
            ]
            if plan.summary:
                folded = [by_id[oid] for oid in plan.summary]
                sends.append(
                    (
                        folded,
                        lambda f=folded: channel.send(message.summary(f, self.tz)),
                        "summarized",
                    )
                )
            for batch, send, status in sends:
                untried -= {r["outbox_id"] for r in batch}
                retry_at = self._send_one(name, batch, send, now, status=status)
                if retry_at is not None:  # the service is down: everything else waits too
                    outbox.defer(self.db, sorted(untried), retry_at)
                    return

    def _send_one(
        self, name: str, rows: list[dict], send, now: datetime, status: str = "sent"
    ) -> datetime | None:
        """Claim, send, mark; returns None when sent (or taken meanwhile), else the retry time."""
        ids = outbox.claim(self.db, [r["outbox_id"] for r in rows], now)
        if not ids:
            return None
        log = logger.bind(channel=name, event_id=rows[0]["id"], kind=rows[0]["kind"])
        try:
            send()
        except Exception as exc:
            error = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}: {exc}"
            error = redact(error)  # admins read it in /notifications/recent: no URL secrets
            attempts = max(r["attempts"] for r in rows) + 1
            wait = backoff_seconds(attempts, self.s.notify_retry_max_seconds)
            retry_at = now + timedelta(seconds=wait)
            outbox.mark_retry(self.db, ids, error, retry_at)
            log.warning("not sent (try {}), again in {:.0f} s: {}", attempts, wait, error)
            return retry_at
        outbox.mark_sent(self.db, ids, now, status=status)
        log.info("sent {} message(s) as {}", len(ids), status)
        return None

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop`` is set: one thread (and store connection) per channel."""
        self.start(utc_now())
        logger.info("notify running: channels {}", ", ".join(self.channels) or "none")
        threads = [
            threading.Thread(
                target=self._channel_loop, args=(name, channel, stop), name=f"notify-{name}"
            )
            for name, channel in self.channels.items()
        ]
        for thread in threads:
            thread.start()
        last_purge = 0.0
        while not stop.wait(POLL_S * 5):
            self._publish_status(running=True)
            if time.monotonic() - last_purge >= PURGE_EVERY_S:
                last_purge = time.monotonic()
                try:
                    gone = outbox.purge(self.db, utc_now() - KEEP_DONE)
                    if gone:
                        logger.info("outbox: {} old row(s) removed", gone)
                except Exception:
                    logger.exception("outbox purge failed; trying again later")
        for thread in threads:
            thread.join(30)
        self._publish_status(running=False)

    def _channel_loop(self, name: str, channel: Any, stop: threading.Event) -> None:
        worker: Sender | None = None
        try:
            while not stop.wait(POLL_S):
                try:
                    if worker is None:  # its own connection: sqlite3 ones are not for sharing
                        db = open_db(self.s.db_path, migrate_schema=False)
                        worker = Sender(self.s, db, {name: channel})
                        worker.stop = stop
                    worker.drain(utc_now())
                    tick = getattr(channel, "tick", None)
                    if tick is not None:
                        tick(utc_now())
                except Exception:  # the store or a channel hiccup: the thread carries on
                    logger.exception("{} pass failed; again in {} s", name, POLL_S)
        finally:
            if worker is not None:
                worker.db.conn.close()

    def _publish_status(self, *, running: bool) -> None:
        try:
            put_status(
                self.db,
                "notify",
                {
                    "running": running,
                    "channels": {
                        name: bool(getattr(ch, "ready", lambda: True)())
                        for name, ch in self.channels.items()
                    },
                    "outbox": outbox.counts(self.db),
                },
            )
        except Exception as exc:
            logger.warning("notify status not published: {}", exc)

    def close(self) -> None:
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()
