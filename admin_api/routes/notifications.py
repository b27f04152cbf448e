"""Notifications (admin only): the configuration with secrets masked, a test send, recent sends.

The API never sends events itself (the notify process drains the outbox); the test send is the
one exception, made on an admin's request, exactly like ``python -m appliance notify-test``.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from admin_api.auth import actor
from admin_api.state import db, state
from admin_api.validation import query_int
from appliance import store
from notify import admin, outbox

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
def config() -> Response:
    return jsonify({**admin.config(state().settings), "outbox": outbox.counts(db())})


@bp.get("/notifications/recent")
def recent() -> Response:
    limit = query_int("limit", 50, low=1, high=500)
    labels = admin.channel_labels(state().settings)
    items = [
        {**r, "channel": labels.get(r["channel"], r["channel"])} for r in outbox.recent(db(), limit)
    ]
    return jsonify({"items": items, "limit": limit})


@bp.post("/notifications/test")
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
