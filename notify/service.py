"""The sender loop: every second, send what is due on each channel, retry what failed.

One :class:`Sender` per process. ``drain(now)`` is one pass over the outbox (tests call it with
their own clock); ``run(stop)`` repeats it until the stop event is set.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlite_utils
from loguru import logger

from appliance.settings import Settings
from appliance.store import parse_iso, utc_now
from notify import message, outbox
from notify.channels import AppriseChannel, SendError, WebhookChannel
from notify.plan import backoff_seconds, plan_rate

POLL_S = 1.0


class EventChannel(Protocol):
    name: str

    def send(self, event: dict[str, Any]) -> None: ...


def build_channels(settings: Settings) -> dict[str, Any]:
    """The channels the settings configure, by outbox channel name."""
    channels: dict[str, Any] = {}
    if settings.notify_url_list:
        channels["notify"] = AppriseChannel(settings.notify_url_list)
    if settings.webhook_url and settings.webhook_secret:
        channels["webhook"] = WebhookChannel(
            settings.webhook_url.get_secret_value(), settings.webhook_secret.get_secret_value()
        )
    if settings.mqtt_url:
        from notify.mqtt import MqttChannel

        channels["mqtt"] = MqttChannel(settings)
    return channels


class Sender:
    def __init__(
        self, settings: Settings, db: sqlite_utils.Database, channels: dict[str, Any]
    ) -> None:
        self.s = settings
        self.db = db
        self.channels = channels
        self.tz = settings.tz
        self.window = timedelta(minutes=settings.notify_rate_window_minutes)
        self.give_up = timedelta(hours=settings.notify_give_up_hours)

    def start(self, now: datetime) -> None:
        """Declare the channels (the trigger then queues rows for them) and recover a crash."""
        outbox.configure_channels(
            self.db,
            {name: (self.s.notify_kinds if name == "notify" else None) for name in self.channels},
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
        if name == "notify":
            self._send_to_people(channel, live, now)
        else:
            for row in live:
                self._send_one(name, [row], lambda r=row: channel.send(message.event_json(r)), now)
        return len(rows)

    def _send_to_people(self, channel: AppriseChannel, rows: list[dict], now: datetime) -> None:
        by_kind: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_kind[row["kind"]].append(row)
        for kind, group in by_kind.items():
            sent = outbox.sent_times(self.db, "notify", kind, now, self.window)
            plan = plan_rate(
                [r["outbox_id"] for r in group], sent, now, self.s.notify_rate_limit, self.window
            )
            if plan.wait_until is not None:
                outbox.defer(self.db, [r["outbox_id"] for r in group], plan.wait_until)
                continue
            by_id = {r["outbox_id"]: r for r in group}
            for oid in plan.single:
                row = by_id[oid]
                self._send_one(
                    "notify", [row], lambda r=row: channel.send(message.for_event(r, self.tz)), now
                )
            if plan.summary:
                folded = [by_id[oid] for oid in plan.summary]
                self._send_one(
                    "notify",
                    folded,
                    lambda f=folded: channel.send(message.summary(f, self.tz)),
                    now,
                    status="summarized",
                )

    def _send_one(
        self, name: str, rows: list[dict], send, now: datetime, status: str = "sent"
    ) -> None:
        ids = outbox.claim(self.db, [r["outbox_id"] for r in rows], now)
        if not ids:
            return
        log = logger.bind(channel=name, event_id=rows[0]["id"], kind=rows[0]["kind"])
        try:
            send()
        except Exception as exc:
            error = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}: {exc}"
            attempts = max(r["attempts"] for r in rows) + 1
            wait = backoff_seconds(attempts, self.s.notify_retry_max_seconds)
            outbox.mark_retry(self.db, ids, error, now + timedelta(seconds=wait))
            log.warning("not sent (try {}), again in {:.0f} s: {}", attempts, wait, error)
            return
        outbox.mark_sent(self.db, ids, utc_now() if now is None else now, status=status)
        log.info("sent {} message(s) as {}", len(ids), status)

    def run(self, stop: threading.Event) -> None:
        self.start(utc_now())
        logger.info("notify running: channels {}", ", ".join(self.channels) or "none")
        while not stop.wait(POLL_S):
            self.drain(utc_now())
            for channel in self.channels.values():
                tick = getattr(channel, "tick", None)
                if tick is not None:
                    tick(utc_now())

    def close(self) -> None:
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()
