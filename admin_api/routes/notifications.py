"""Notifications (admin only): the configuration with secrets masked, a test send, recent sends.

The API never sends events itself (the notify process drains the outbox); the test send is the
one exception, made on an admin's request, exactly like ``python -m appliance notify-test``.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from admin_api.auth import actor
from admin_api.models import NotifyConfig, NotifyRecent, NotifyRecentQuery, NotifyTest
from admin_api.openapi import doc
from admin_api.state import db, state
from admin_api.validation import parse_query
from appliance import store
from notify import admin, outbox

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
@doc(
    "Notification, webhook and MQTT settings (masked) and outbox counts",
    "notifications",
    NotifyConfig,
)
def config() -> Response:
    return jsonify({**admin.config(state().settings), "outbox": outbox.counts(db())})


@bp.get("/notifications/recent")
@doc(
    "The latest sends and failures, newest first",
    "notifications",
    NotifyRecent,
    query=NotifyRecentQuery,
)
def recent() -> Response:
    limit = parse_query(NotifyRecentQuery).limit
    labels = admin.channel_labels(state().settings)
    items = [
        {**r, "channel": labels.get(r["channel"], r["channel"])} for r in outbox.recent(db(), limit)
    ]
    return jsonify({"items": items, "limit": limit})


@bp.post("/notifications/test")
@doc(
    "Send a test message to every notification URL; one answer per URL", "notifications", NotifyTest
)
def test() -> Response:
    conn = db()
    results = admin.test_all(state().settings)
    with conn.conn:
        store.audit(
            conn,
            actor(),
            "notifications.test",
            None,
            {"sent": sum(r["ok"] for r in results), "failed": sum(not r["ok"] for r in results)},
        )
    return jsonify({"results": results})
