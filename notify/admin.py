"""Notification admin: masked configuration, test sends, the outbox's recent history.

Shared by ``python -m notify status|test``, ``python -m appliance notify-test`` and the API.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from appliance.settings import Settings
from appliance.store import to_iso, utc_now
from notify import outbox
from notify.channels import SendError, send_apprise
from notify.message import Message, mask_url


def channel_labels(settings: Settings) -> dict[str, str]:
    """Outbox channel name -> what to show for it (URLs masked)."""
    from notify.service import notify_channel_name

    labels = {notify_channel_name(u): mask_url(u) for u in settings.notify_url_list}
    if settings.webhook_url:
        labels["webhook"] = "webhook " + mask_url(settings.webhook_url.get_secret_value())
    if settings.mqtt_url:
        labels["mqtt"] = "MQTT " + mask_url(settings.mqtt_url.get_secret_value())
    return labels


def config(settings: Settings) -> dict[str, Any]:
    """The notification settings with every secret masked."""
    return {
        "channels": channel_labels(settings),
        "notify_urls": [mask_url(u) for u in settings.notify_url_list],
        "notify_on": settings.notify_kinds,
        "rate_limit": {
            "per_kind": settings.notify_rate_limit,
            "window_minutes": settings.notify_rate_window_minutes,
        },
        "webhook_url": mask_url(settings.webhook_url.get_secret_value())
        if settings.webhook_url
        else None,
        "mqtt_url": mask_url(settings.mqtt_url.get_secret_value()) if settings.mqtt_url else None,
        "mqtt_allow_unlock": settings.mqtt_allow_unlock,
    }


def status(settings: Settings, db: sqlite_utils.Database) -> dict[str, Any]:
    from appliance.store import get_status

    labels = channel_labels(settings)
    recent = [
        {**r, "channel": labels.get(r["channel"], r["channel"])} for r in outbox.recent(db, 20)
    ]
    return {
        **config(settings),
        "process": get_status(db, "notify"),
        "outbox": outbox.counts(db),
        "recent": recent,
    }


def status_text(info: dict[str, Any]) -> str:
    lines = [
        "notification URLs: " + (", ".join(info["notify_urls"]) or "none"),
        "notified kinds:    " + ", ".join(info["notify_on"]),
        f"webhook:           {info['webhook_url'] or 'off'}",
        f"MQTT:              {info['mqtt_url'] or 'off'}",
        "outbox:            "
        + (
            "; ".join(
                f"{c}: " + ", ".join(f"{n} {s}" for s, n in st.items())
                for c, st in info["outbox"].items()
            )
            or "empty"
        ),
    ]
    for r in info["recent"]:
        lines.append(
            f"  {r['sent_at'] or r['created_at']} {r['channel']} {r['kind']} "
            f"{r['status']} (tries {r['attempts']}) {r['last_error'] or ''}"
        )
    return "\n".join(lines)


def test_all(settings: Settings) -> list[dict[str, Any]]:
    """Send a test message to every notification URL; one answer per URL (masked)."""
    msg = Message(
        f"[Facegate] Test message - {settings.door_name}",
        f"Test message from door {settings.door_name} at {to_iso(utc_now())}. "
        "If you read this, notifications reach you.",
    )
    answers = []
    for url in settings.notify_url_list:
        try:
            said = send_apprise(url, msg)
            answers.append({"url": mask_url(url), "ok": True, "answer": said})
        except SendError as exc:
            answers.append({"url": mask_url(url), "ok": False, "answer": str(exc)})
        except Exception as exc:
            answers.append({"url": mask_url(url), "ok": False, "answer": f"{type(exc).__name__}"})
    return answers


def print_test(settings: Settings) -> int:
    if not settings.notify_url_list:
        print("no notification URLs: set FACEGATE_NOTIFY_URLS")
        return 2
    answers = test_all(settings)
    for a in answers:
        print(f"{'OK  ' if a['ok'] else 'FAIL'} {a['url']}: {a['answer']}")
    return 0 if all(a["ok"] for a in answers) else 1
