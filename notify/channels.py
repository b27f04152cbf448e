"""The senders: Apprise for people, a signed webhook, MQTT. Each answers per message.

A channel's ``send`` raises :class:`SendError` when the receiver did not accept; the service
then retries with backoff. Nothing here touches the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import httpx
from loguru import logger

from notify.message import Message, mask_url

# Apprise logs through the standard logging module and may name hosts or tokens: only what
# send_apprise captures, scrubbed, reaches our log.
logging.getLogger("apprise").addHandler(logging.NullHandler())
logging.getLogger("apprise").propagate = False

SIGNATURE_HEADER = "X-Facegate-Signature"
WEBHOOK_TIMEOUT_S = 10.0


class SendError(RuntimeError):
    """The receiver did not accept the message (down, refused, timed out)."""


# --- Apprise (people) ----------------------------------------------------------------------


def send_apprise(url: str, message: Message) -> str:
    """Send one message to one Apprise URL; returns what Apprise said; raises on failure."""
    import apprise

    app = apprise.Apprise()
    if not app.add(url):
        raise SendError(f"{mask_url(url)}: not a valid Apprise URL")
    attach = None
    if message.attachment is not None:
        attach = apprise.AppriseAttachment()
        attach.add(str(message.attachment))
    with apprise.LogCapture(level=logging.INFO, fmt="%(message)s") as output:
        ok = app.notify(title=message.title, body=message.body, attach=attach)
    said = " ".join(line.strip() for line in output.getvalue().splitlines() if line.strip())
    said = _scrub(said, url)
    if not ok:
        raise SendError(f"{mask_url(url)}: {said or 'refused'}")
    return said or "sent"


def _scrub(text: str, url: str) -> str:
    """Apprise logs may quote parts of the URL: never let a secret reach our logs."""
    for part in url.replace("://", "/").replace("@", "/").replace(":", "/").split("/"):
        if len(part) >= 6:
            text = text.replace(part, "***")
    return text


class AppriseChannel:
    """Apprise URLs (one per channel in practice: each URL has its own outbox rows)."""

    name = "notify"

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls

    def send(self, message: Message) -> None:
        errors = []
        for url in self.urls:
            try:
                send_apprise(url, message)
            except SendError as exc:
                errors.append(str(exc))
            except Exception as exc:  # a plugin bug must not kill the sender
                errors.append(f"{mask_url(url)}: {type(exc).__name__}: {_scrub(str(exc), url)}")
        if errors:
            raise SendError("; ".join(errors))


# --- webhook (machines) --------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """HMAC-SHA256 of the body, hex: the X-Facegate-Signature header."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, secret: str, timeout: float = WEBHOOK_TIMEOUT_S) -> None:
        self.url, self.secret = url, secret
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":"), default=str).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.secret),
            "X-Facegate-Event-Id": str(event.get("id")),
        }
        try:
            resp = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SendError(f"webhook {mask_url(self.url)}: {type(exc).__name__}") from None
        if resp.status_code >= 300:
            raise SendError(f"webhook {mask_url(self.url)}: HTTP {resp.status_code}")
        logger.debug("webhook accepted event {} ({})", event.get("id"), resp.status_code)

    def close(self) -> None:
        self.client.close()
