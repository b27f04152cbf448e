"""Request validation: strict pydantic models for JSON bodies and small parsers for query strings.

The same models give the request-body schemas of the OpenAPI document (``admin_api.openapi``), so
what the spec promises and what the API checks cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from admin_api.errors import bad_request
from appliance import policy, store

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
HHMM_OR_24 = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
Day = Annotated[int, Field(ge=0, le=6)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Notes = Annotated[str, Field(max_length=4000)]
Instant = Annotated[str, Field(min_length=1, max_length=64, description="ISO-8601; no zone = UTC")]

_STRICT = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)
M = TypeVar("M", bound=BaseModel)


def _instant(value: str | None) -> str | None:
    """Normalise an ISO-8601 instant to the store's UTC text form."""
    if value is None:
        return None
    try:
        return store.to_iso(store.parse_iso(value))
    except store.OutOfRange:
        raise
    except ValueError:
        raise ValueError(f"not an ISO-8601 date-time: {value!r}") from None


class Window(BaseModel):
    """A weekly window: days 0 (Monday) .. 6; end may be 24:00; end < start runs past midnight."""

    model_config = _STRICT
    days: list[Day] = Field(min_length=1, max_length=7, json_schema_extra={"uniqueItems": True})
    start: str = Field(pattern=HHMM, description="HH:MM, 00:00 .. 23:59")
    end: str = Field(pattern=HHMM_OR_24, description="HH:MM, 00:01 .. 24:00; not equal to start")

    @field_validator("days")
    @classmethod
    def _unique_days(cls, days: list[int]) -> list[int]:
        if len(set(days)) != len(days):
            raise ValueError("days must not repeat")
        return sorted(days)


def _windows(windows: list[Window]) -> list[dict[str, Any]]:
    # the appliance's own check decides what the door accepts; run it here as well
    try:
        return policy.validate_windows([w.model_dump() for w in windows])
    except ValueError as exc:
        raise bad_request(f"windows: {exc}") from None


class ScheduleCreate(BaseModel):
    model_config = _STRICT
    name: Text
    windows: list[Window] = Field(max_length=100)

    def windows_json(self) -> list[dict[str, Any]]:
        return _windows(self.windows)


class ScheduleUpdate(BaseModel):
    model_config = _STRICT
    name: Text | SkipJsonSchema[None] = None
    windows: Annotated[list[Window], Field(max_length=100)] | SkipJsonSchema[None] = None

    def windows_json(self) -> list[dict[str, Any]] | None:
        return None if self.windows is None else _windows(self.windows)


class _PersonFields(BaseModel):
    model_config = _STRICT
    external_id: Text | None = None
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    schedule_id: Text | None = None
    notes: Notes | None = None

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        return _instant(value)

    def check_dates(self, current: dict[str, Any] | None = None) -> None:
        merged = {**(current or {}), **self.model_dump(exclude_unset=True)}
        start, end = merged.get("valid_from"), merged.get("valid_until")
        if start and end and store.parse_iso(start) >= store.parse_iso(end):
            raise bad_request("valid_from must be before valid_until")


class PersonCreate(_PersonFields):
    name: Text
    active: bool = True


class PersonUpdate(_PersonFields):
    name: Text | SkipJsonSchema[None] = None
    active: bool | SkipJsonSchema[None] = None

    @field_validator("name", "active")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_body(model: type[M]) -> M:
    """The request's JSON object validated against ``model``, or a 400 naming each problem."""
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # json.loads recurses once per level; "silent" catches ValueError only
        raise bad_request("the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise bad_request(_describe(exc)) from None
    except ValueError as exc:  # policy.validate_windows and friends
        raise bad_request(str(exc)) from None


# --- query strings ---------------------------------------------------------------------------


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise bad_request(f"{name} must be between {low} and {high}")
    return value


def query_bool(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise bad_request(f"{name} must be true or false")


def query_instant(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if " " in raw.strip() and "+" not in raw:
        # an unencoded "+01:00" in a URL arrives as " 01:00"
        head, _, zone = raw.strip().rpartition(" ")
        raw = f"{head}+{zone}"
    try:
        return _instant(raw)
    except ValueError as exc:
        raise bad_request(f"{name}: {exc}") from None


def query_list(name: str) -> list[str]:
    """Repeated (``?kind=a&kind=b``) or comma-separated (``?kind=a,b``) values."""
    out: list[str] = []
    for raw in request.args.getlist(name):
        out += [v.strip() for v in raw.split(",") if v.strip()]
    return out


def query_text(name: str, *, max_length: int = 200) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length:
        raise bad_request(f"{name} is longer than {max_length} characters")
    return raw
