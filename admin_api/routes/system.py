"""Health check (no token), the OpenAPI document, and the audit log (admin only)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from admin_api.auth import public, viewer_allowed
from admin_api.openapi import build_spec
from admin_api.state import db, state
from admin_api.validation import query_int, query_text
from appliance import store

bp = Blueprint("system", __name__)


@bp.get("/")
@public
def index() -> Response:
    """Where to go from here: a person who opens the API's address finds the console and docs."""
    settings = state().settings
    return jsonify(
        {
            "service": "Facegate admin API",
            "console": f"http://127.0.0.1:{settings.ui_port}/ (on the kiosk; sign in with a token)",
            "openapi": "/api/v1/openapi.json (send Authorization: Bearer <token>)",
            "health": "/api/v1/health",
            "tokens": "python -m admin_api token create --role admin --name NAME",
        }
    )


@bp.get("/health")
@public
def health() -> Response:
    """Liveness only: answers without a token and says nothing about the site."""
    db().execute("SELECT 1").fetchone()
    return jsonify({"status": "ok"})


@bp.get("/me")
@viewer_allowed
def me() -> Response:
    """Who is calling: the console shows admin controls only to an admin token."""
    return jsonify({"name": g.token.name, "role": g.token.role})


@bp.get("/openapi.json")
@viewer_allowed
def openapi() -> Response:
    return jsonify(build_spec())


@bp.get("/audit")
def audit_log() -> Response:
    limit = query_int("limit", 100, low=1, high=1000)
    offset = query_int("offset", 0, low=0, high=10**9)
    rows = store.list_audit(db(), actor=query_text("actor"), limit=limit, offset=offset)
    return jsonify({"items": rows, "limit": limit, "offset": offset})
