"""The one error shape of the API: ``{"error": {"code": ..., "message": ...}}``.

Views raise :class:`ApiError`, or let the store's and the models' errors through: the handlers
that ``register_error_handlers`` installs map them all (and Flask's own 404, 405, 413, and anything
unexpected) to that shape, here and nowhere else.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from flask import Flask, Response, jsonify, request
from loguru import logger
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from admin_api.models import InvalidRequest
from appliance import store


class ApiError(Exception):
    """An error the client should see, with its HTTP status and a stable machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def error_response(
    status: int, code: str, message: str, extra: dict[str, Any] | None = None
) -> Response:
    resp = jsonify({"error": {"code": code, "message": message, **(extra or {})}})
    resp.status_code = status
    return resp


#: Where pydantic names the member of a union that failed ("active.bool", "name.constrained-str"):
#: noise to a client, who needs the field and what is wrong.
_UNION_TAG = re.compile(
    r"^(str|bool|int|float|none|(constrained|function|lax|strict)-.*|\w+\[.*\])$"
)


def _describe(exc: ValidationError) -> str:
    """Each problem as "field: what is wrong", e.g. ``windows.0.start: String should match ...``."""
    errors = exc.errors(include_url=False)
    fields = {}
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"] if not _UNION_TAG.match(str(p))) or "body"
        if err["type"] == "none_required" and len(errors) > 1:
            continue  # "or null" is never what the client meant to send
        fields.setdefault(loc, []).append(err["msg"].removeprefix("Value error, "))
    return "; ".join(f"{loc}: {' or '.join(dict.fromkeys(msgs))}" for loc, msgs in fields.items())


#: What a UNIQUE constraint failure means to the client, by the column that failed.
TAKEN = {
    "persons.external_id": "another person already has this external_id",
    "schedules.name": "a schedule with this name exists",
}


def _from_store(exc: Exception) -> ApiError | None:
    """The client's view of a store or validation error; None for a real failure (500)."""
    if isinstance(exc, ValidationError):
        return bad_request(_describe(exc))
    if isinstance(exc, InvalidRequest):
        return bad_request(str(exc))
    if isinstance(exc, store.NotFound):
        return not_found(str(exc).strip("'\""))
    if isinstance(exc, store.InUse):
        return conflict(f"{exc}; assign them another one first")
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        column = str(exc).rpartition(": ")[2]
        return conflict(TAKEN.get(column, f"{column} is already taken"))
    return None


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "error"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        resp = error_response(exc.status, exc.code, exc.message, exc.extra)
        for key, value in exc.headers.items():
            resp.headers[key] = value
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body is larger than the limit of {limit} bytes"
        resp = error_response(status, _snake(exc.name), message)
        if status == 405 and exc.response is None:
            # keep the Allow header Flask computed for us
            allow = getattr(exc, "valid_methods", None)
            if allow:
                resp.headers["Allow"] = ", ".join(allow)
        return resp

    @app.errorhandler(ValidationError)
    @app.errorhandler(InvalidRequest)
    @app.errorhandler(store.NotFound)
    @app.errorhandler(store.InUse)
    @app.errorhandler(sqlite3.IntegrityError)
    def _client_error(exc: Exception) -> Response:
        mapped = _from_store(exc)
        if mapped is None:
            return _unexpected(exc)
        return _api_error(mapped)

    @app.errorhandler(sqlite3.OperationalError)
    def _store_busy(exc: sqlite3.OperationalError) -> Response:
        logger.bind(path=request.path, method=request.method).error("store error: {}", exc)
        if "locked" in str(exc) or "busy" in str(exc):
            resp = error_response(503, "store_busy", "the local store is busy; retry shortly")
            resp.headers["Retry-After"] = "1"
            return resp
        return error_response(500, "internal_error", "internal error (see the API log)")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.bind(path=request.path, method=request.method).exception("unhandled error")
        return error_response(500, "internal_error", "internal error (see the API log)")
