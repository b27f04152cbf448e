"""Health check (no token), the OpenAPI document, and the audit log (admin only)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from admin_api.auth import public, viewer_allowed
from admin_api.models import AuditEntry, AuditPage, AuditQuery, Health, Index, Me, dump
from admin_api.openapi import build_spec, doc
from admin_api.state import db, state
from admin_api.validation import parse_query
from appliance import store

bp = Blueprint("system", __name__)


@bp.get("/")
@public
@doc("Where to go: the console, this document, the health check (no token)", "system", Index)
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
@doc("Liveness check (no token)", "system", Health)
def health() -> Response:
    """Liveness only: answers without a token and says nothing about the site."""
    db().execute("SELECT 1").fetchone()
    return jsonify({"status": "ok"})


@bp.get("/me")
@viewer_allowed
@doc("The calling token's name and role", "system", Me)
def me() -> Response:
    """Who is calling: the console shows admin controls only to an admin token."""
    return jsonify({"name": g.token.name, "role": g.token.role})


@bp.get("/openapi.json")
@viewer_allowed
@doc("This document", "system", {"application/json": {"schema": {"type": "object"}}})
def openapi() -> Response:
    return jsonify(build_spec())


@bp.get("/audit")
@doc("Audit log: who changed what, newest first", "system", AuditPage, query=AuditQuery)
def audit_log() -> Response:
    q = parse_query(AuditQuery)
    rows = store.list_audit(db(), actor=q.actor, limit=q.limit, offset=q.offset)
    return jsonify(
        {"items": [dump(AuditEntry, r) for r in rows], "limit": q.limit, "offset": q.offset}
    )
