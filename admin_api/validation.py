"""Reading a request through the models of ``admin_api.models``: the JSON body and the query string.

A problem raises pydantic's ``ValidationError`` (or ``ValueError``), which the one error handler
(``admin_api.errors``) answers with a 400 naming each field and what is wrong with it.
"""

from __future__ import annotations

from typing import TypeVar, get_origin

from flask import request
from pydantic import BaseModel

from admin_api.errors import bad_request

M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M]) -> M:
    """The request's JSON object validated against ``model``."""
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # json.loads recurses once per level; "silent" catches ValueError only
        raise bad_request("the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return model.model_validate(body)


def parse_query(model: type[M]) -> M:
    """The query string validated against ``model``; list fields take repeated keys."""
    values: dict[str, object] = {}
    for name, field in model.model_fields.items():
        if get_origin(field.annotation) is list:
            raw = [v for v in request.args.getlist(name) if v != ""]
        else:
            raw = request.args.get(name)
        if raw not in (None, "", []):
            values[name] = raw
    return model.model_validate(values)
