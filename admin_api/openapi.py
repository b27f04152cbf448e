"""The OpenAPI 3.1 document, generated from the routes and their models (GET /api/v1/openapi.json).

Each view carries a :func:`doc` (summary, tag, response model, query and body models, the errors
it may answer); paths and methods come from Flask's URL map, the role (``x-role``, security) from
``admin_api.auth``, every schema from the pydantic models in ``admin_api.models``. A test still
checks the document against the app's routes, both ways.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel

from admin_api import models
from admin_api.auth import required_role

JSON = "application/json"
#: kept for the test that compares them with appliance.enroll.REFUSAL_MESSAGES
PHOTO_REFUSALS = models.PhotoRefusal.__args__

ERRORS = {
    400: ("BadRequest", "bad input; the message names the field and says what is wrong"),
    401: ("Unauthorized", "no token, or an unknown or revoked one"),
    403: ("Forbidden", "the token's role may not do this"),
    404: ("NotFound", "no such item"),
    409: (
        "Conflict",
        "conflicts with existing data (for photos: the face is another enrolled person's)",
    ),
    413: ("TooLarge", "upload larger than FACEGATE_API_MAX_UPLOAD_MB, or image too large"),
    415: ("NotAnImage", "no uploaded file is a readable image"),
    422: ("NoUsableFace", "no uploaded photo shows exactly one usable face"),
    429: ("TooManyFailures", "too many failed authentications from this address"),
}
STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted"}
F = TypeVar("F", bound=Callable[..., Any])
Content = type[BaseModel] | dict[str, Any]


@dataclass(frozen=True)
class Doc:
    summary: str
    tag: str
    ok: Content
    status: int
    query: type[BaseModel] | None
    body: Content | None
    errors: tuple[int, ...]
    description: str
    headers: dict[str, str]
    also: dict[int, tuple[str, Content]]


def doc(
    summary: str,
    tag: str,
    ok: Content,
    *,
    status: int = 200,
    query: type[BaseModel] | None = None,
    body: Content | None = None,
    errors: tuple[int, ...] = (),
    description: str = "",
    headers: dict[str, str] | None = None,
    also: dict[int, tuple[str, Content]] | None = None,
) -> Callable[[F], F]:
    """Describe a view for the OpenAPI document.

    ``ok`` and ``body`` are a model (JSON) or a content mapping (media type -> schema or model).
    A 400 is implied by a query or body model; 401/429/403 by the view's role. ``description``
    replaces the success response's default text, ``headers`` (name -> description) are response
    headers it sends (date-time strings), ``also`` other successes: status -> (text, content).
    """

    def mark(view: F) -> F:
        view.api_doc = Doc(  # type: ignore[attr-defined]
            summary,
            tag,
            ok,
            status,
            query,
            body,
            errors,
            description,
            dict(headers or {}),
            dict(also or {}),
        )
        return view

    return mark


def _strip_null_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip_null_defaults(val)
            for k, val in node.items()
            if not (k == "default" and val is None)
        }
    if isinstance(node, list):
        return [_strip_null_defaults(x) for x in node]
    return node


class _Builder:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def content(self, what: Content, mode: str) -> dict[str, Any]:
        if isinstance(what, type):
            what = {JSON: what}
        return {
            media: {"schema": self.ref(s, mode)} if isinstance(s, type) else s
            for media, s in what.items()
        }

    def parameters(self, rule: str, query: type[BaseModel] | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if converter == "int" else "string"},
            }
            for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", rule)
        ]
        if query is None:
            return out
        for name, schema in query.model_json_schema()["properties"].items():
            param = {"name": name, "in": "query", "required": False, "schema": schema}
            if "description" in schema:
                param["description"] = schema.pop("description")
            schema.pop("title", None)
            if schema.get("type") == "array":
                param |= {"explode": True, "style": "form"}
            out.append(param)
        return out

    def operation(self, rule: str, d: Doc, role: str | None) -> dict[str, Any]:
        codes = set(d.errors) | ({400} if d.query or d.body else set())
        if role is not None:
            codes |= {401, 429} | ({403} if role == "admin" else set())
        ok: dict[str, Any] = {
            "description": d.description or STATUS_TEXT.get(d.status, "OK"),
            "content": self.content(d.ok, "serialization"),
        }
        if d.headers:
            ok["headers"] = {
                name: {"description": text, "schema": {"type": "string", "format": "date-time"}}
                for name, text in d.headers.items()
            }
        op: dict[str, Any] = {
            "summary": d.summary,
            "tags": [d.tag],
            "x-role": role or "public",
            "responses": {
                str(d.status): ok,
                **{
                    str(c): {"description": text, "content": self.content(what, "serialization")}
                    for c, (text, what) in sorted(d.also.items())
                },
                **{
                    str(c): {"$ref": f"#/components/responses/{ERRORS[c][0]}"}
                    for c in sorted(codes)
                },
            },
        }
        if role is None:
            op["security"] = []
        params = self.parameters(rule, d.query)
        if params:
            op["parameters"] = params
        if d.body is not None:
            op["requestBody"] = {"required": True, "content": self.content(d.body, "validation")}
        return op


def _routes_app() -> Flask:
    """An app with the API's blueprints and nothing else: no settings, no store."""
    from admin_api.routes import API_PREFIX, BLUEPRINTS, system

    app = Flask("facegate-openapi", static_folder=None)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp, url_prefix=API_PREFIX)
    app.add_url_rule("/", "root", system.index)  # as admin_api.app does
    return app


@cache
def _spec() -> dict[str, Any]:
    app = _routes_app()
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        d: Doc | None = getattr(view, "api_doc", None)
        if d is None:
            continue  # the route-vs-document test names it
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = builder.operation(
                rule.rule, d, required_role(view)
            )
    error = builder.ref(models.Error, "serialization")
    return _strip_null_defaults(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "Facegate admin API",
                "version": "1",
                "description": "Manage the people, schedules and entry log of one Facegate door. "
                "Bearer tokens: admin (everything) or viewer (read only).",
            },
            "servers": [{"url": "/"}],
            "security": [{"bearer": []}],
            "paths": paths,
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": dict(sorted(builder.schemas.items())),
                "responses": {
                    name: {"description": text, "content": {JSON: {"schema": error}}}
                    for name, text in ERRORS.values()
                },
            },
        }
    )


def build_spec() -> dict[str, Any]:
    """A fresh copy of the document (callers may modify it)."""
    return copy.deepcopy(_spec())
