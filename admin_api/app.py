"""The admin API's Flask app factory: blueprints, authentication, the JSON error shape."""

from __future__ import annotations

import time

from flask import Flask, current_app, g, request

from admin_api.auth import required_role, role_allows
from admin_api.errors import ApiError, register_error_handlers
from admin_api.routes import API_PREFIX, BLUEPRINTS, system
from admin_api.state import ApiState, state
from appliance.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for ``settings`` (loaded from the environment when None)."""
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)
    # Flask refuses bigger bodies from Content-Length alone, before anything reads the stream.
    app.config["MAX_CONTENT_LENGTH"] = int(settings.api_max_upload_mb * 1024 * 1024)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    app.extensions["facegate"] = ApiState(settings)
    register_error_handlers(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp, url_prefix=API_PREFIX)
    app.add_url_rule("/", "root", system.index)  # the bare address points to the same map
    app.before_request(_authenticate)
    return app


def _authenticate() -> None:
    """Check the bearer token and the role the view needs; raise 401/403/429 otherwise."""
    if request.url_rule is None:
        return  # no such route: Flask answers 404/405 in the error shape
    needed = required_role(current_app.view_functions.get(request.endpoint or ""))
    if needed is None:
        return
    st: ApiState = state()
    address = request.remote_addr or "?"
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    # a valid token is always checked and accepted: the limiter throttles failures only, so a
    # stranger guessing from 127.0.0.1 (or behind the same proxy) never locks the admins out
    presented = scheme.lower() == "bearer" and bool(token)
    info = st.tokens.check(st.db(), token) if presented else None
    if info is None:
        now = time.monotonic()
        wait = st.limiter.retry_after(address, now)
        if presented:  # a wrong guess, even while throttled, keeps the address throttled
            st.limiter.record_failure(address, now)
        if wait > 0:
            raise ApiError(
                429,
                "too_many_failures",
                f"too many failed authentications from {address}; retry in {wait:.0f} s",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        if not presented:
            raise ApiError(
                401,
                "unauthorized",
                "send a token: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        raise ApiError(
            401,
            "unauthorized",
            "unknown or revoked token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    g.token = info
    if not role_allows(info.role, needed):
        raise ApiError(403, "forbidden", f"this needs an {needed} token; {info.name!r} is a viewer")
