"""The API's one schema: pydantic models for request bodies, query strings and responses.

Routes validate with them (``admin_api.validation``) and shape their answers with them, and the
OpenAPI document (``admin_api.openapi``) is generated from them, so the three cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from appliance import policy, store

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
HHMM_OR_24 = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
Day = Annotated[int, Field(ge=0, le=6)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Notes = Annotated[str, Field(max_length=4000)]
Instant = Annotated[str, Field(min_length=1, max_length=64, description="ISO-8601; no zone = UTC")]
Timestamp = Annotated[str, Field(description="UTC ISO-8601")]
#: appliance.enroll.REFUSAL_MESSAGES' codes (a test keeps them equal; importing enroll here would
#: load the face models in every API process at start-up).
PhotoRefusal = Literal[
    "not_an_image",
    "too_large",
    "decompression_bomb",
    "no_face",
    "several_faces",
    "face_too_small",
    "face_too_blurry",
    "matches_other_person",
    "duplicate",
]


class InvalidRequest(ValueError):
    """A request that is well-formed field by field but wrong as a whole (the API answers 400)."""


#: Content that is not JSON, for the OpenAPI document: media type -> schema.
JPEG = {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}
CSV = {"text/csv": {"schema": {"type": "string"}}}

_STRICT = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


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


# --- request bodies ----------------------------------------------------------------------------


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


def _door_windows(windows: list[Window] | None) -> list[Window] | None:
    # the appliance's own check decides what the door accepts; run it here as well
    if windows is not None:
        policy.validate_windows([w.model_dump() for w in windows])
    return windows


class ScheduleCreate(BaseModel):
    model_config = _STRICT
    name: Text
    windows: list[Window] = Field(max_length=100)

    _windows = field_validator("windows")(_door_windows)


class ScheduleUpdate(BaseModel):
    model_config = _STRICT
    name: Text | SkipJsonSchema[None] = None
    windows: Annotated[list[Window], Field(max_length=100)] | SkipJsonSchema[None] = None

    _windows = field_validator("windows")(_door_windows)


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
        """Raise InvalidRequest unless valid_from (sent or ``current``) is before valid_until."""
        merged = {**(current or {}), **self.model_dump(exclude_unset=True)}
        start, end = merged.get("valid_from"), merged.get("valid_until")
        if start and end and store.parse_iso(start) >= store.parse_iso(end):
            raise InvalidRequest("valid_from must be before valid_until")


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


# --- query strings -----------------------------------------------------------------------------
# Lax (a query string is text: "5" is an integer, "true"/"1"/"yes" a boolean); unknown keys are
# ignored as they always were; an empty value means "not given".


def _plus_restored(raw: Any) -> Any:
    if isinstance(raw, str) and " " in raw.strip() and "+" not in raw:
        head, _, zone = raw.strip().rpartition(" ")  # an unencoded "+01:00" arrives as " 01:00"
        return f"{head}+{zone}"
    return raw


def _comma_split(raw: Any) -> Any:
    if isinstance(raw, list):
        return [v.strip() for item in raw for v in str(item).split(",") if v.strip()]
    return raw


QueryText = Annotated[str, Field(max_length=200)] | SkipJsonSchema[None]
QueryInstant = (
    Annotated[
        str,
        BeforeValidator(_plus_restored),
        Field(max_length=64, json_schema_extra={"format": "date-time"}),
    ]
    | SkipJsonSchema[None]
)


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _limit(default: int, high: int) -> Any:
    return Field(default, ge=1, le=high, description="page size")


Offset = Annotated[int, Field(ge=0, le=10**9, description="items to skip")]


class PeopleQuery(_Query):
    search: QueryText = Field(None, description="part of the name or external id")
    active: bool | SkipJsonSchema[None] = None
    limit: int = _limit(50, 500)
    offset: Offset = 0


class AuditQuery(_Query):
    actor: QueryText = None
    limit: int = _limit(100, 1000)
    offset: Offset = 0


class NotifyRecentQuery(_Query):
    limit: int = _limit(50, 500)


class EventFilters(_Query):
    since: QueryInstant = Field(None, description="events at or after (ISO-8601)")
    until: QueryInstant = Field(None, description="events before (ISO-8601)")
    kind: Annotated[list[Annotated[str, Field(max_length=64)]], BeforeValidator(_comma_split)] = (
        Field([], description="event kinds (repeat, or comma-separated)")
    )
    person_id: QueryText = None
    door: QueryText = None

    @field_validator("since", "until")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        return _instant(value)

    def store_filters(self) -> dict[str, Any]:
        """The keyword arguments of ``store.list_events``."""
        return {
            "since": self.since,
            "until": self.until,
            "kinds": self.kind or None,
            "person_id": self.person_id,
            "door": self.door,
        }


class EventsQuery(EventFilters):
    limit: int = _limit(100, 1000)
    offset: Offset = 0
    before: Annotated[str, Field(max_length=64)] | SkipJsonSchema[None] = Field(
        None, description="cursor: the next_before of the previous page (instead of offset)"
    )
    format: Literal["json", "csv"] = "json"


# --- responses ---------------------------------------------------------------------------------
# Built from store rows (extra columns are dropped), so each model is the list of public fields.


class Person(BaseModel):
    id: str
    name: str
    external_id: str | None
    active: bool
    valid_from: Timestamp | None
    valid_until: Timestamp | None
    schedule_id: str | None
    notes: str | None
    face_count: int
    created_at: Timestamp
    updated_at: Timestamp


class PersonPage(BaseModel):
    items: list[Person]
    total: int
    limit: int
    offset: int


class Face(BaseModel):
    id: str
    person_id: str
    model: str
    quality: float | None
    created_at: Timestamp
    has_photo: bool


class FaceList(BaseModel):
    items: list[Face]


class PhotoResult(BaseModel):
    source: str
    accepted: bool
    code: PhotoRefusal | None
    message: str
    face_id: str | None = None
    quality: float | None = None


class EnrolResult(BaseModel):
    person_id: str
    enrolled: int
    results: list[PhotoResult]


class Schedule(BaseModel):
    id: str
    name: str
    windows: list[Window]
    created_at: Timestamp
    updated_at: Timestamp


class ScheduleList(BaseModel):
    items: list[Schedule]


class Event(BaseModel):
    id: str
    ts: Timestamp
    door: str
    kind: str
    person_id: str | None = None
    person_name: str | None = None
    distance: float | None = None
    reason: str | None = None
    track_id: int | None = None
    details: Any = None
    synced: bool
    has_snapshot: bool


class EventPage(BaseModel):
    items: list[Event]
    limit: int
    offset: int
    next_offset: int | None
    next_before: str | None


class DoorStatus(BaseModel):
    door: str
    appliance_online: bool
    status_age_s: float | None
    appliance: dict[str, Any] | None = Field(
        description=(
            "the appliance's health row: locked, door_open, camera_ok, fps, gallery_size, "
            "last_decision, updated_at, ..."
        )
    )
    sync: dict[str, Any] | None = Field(description="sync state, when running")
    gallery_version: int


class Command(BaseModel):
    """A command for the appliance (an unlock): poll it until its status is final."""

    command_id: int
    kind: str
    status: Literal["pending", "running", "done", "failed", "expired"] = Field(
        description="pending and running are not final; done, failed and expired are"
    )
    result: str | None = Field(description="the appliance's answer, or why it expired")
    requested_by: str | None
    created_at: Timestamp
    done_at: Timestamp | None


class AuditEntry(BaseModel):
    id: int
    ts: Timestamp
    actor: str
    action: str
    target: str | None
    details: Any = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    limit: int
    offset: int


class Deleted(BaseModel):
    id: str
    deleted: bool
    faces_deleted: int | SkipJsonSchema[None] = None


class Index(BaseModel):
    service: str
    console: str
    openapi: str
    health: str
    tokens: str


class Health(BaseModel):
    status: str


class Me(BaseModel):
    name: str
    role: Literal["admin", "viewer"]


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    notify_urls: list[str]
    notify_on: list[str]
    webhook_url: str | None = None
    mqtt_url: str | None = None
    outbox: dict[str, Any]


class NotifyRecent(BaseModel):
    items: list[dict[str, Any]]
    limit: int


class NotifyAnswer(BaseModel):
    url: str
    ok: bool
    answer: str


class NotifyTest(BaseModel):
    results: list[NotifyAnswer]


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    results: list[PhotoResult] | SkipJsonSchema[None] = None
    command_id: int | SkipJsonSchema[None] = None


class Error(BaseModel):
    error: ErrorBody


def dump(model: type[BaseModel], row: Any) -> dict[str, Any]:
    """``row`` (a store row or dict) as the JSON object of ``model``: public fields only.

    A row that does not fit is the server's fault: a RuntimeError (500), never the client's 400.
    """
    try:
        return model.model_validate(row).model_dump(mode="json")
    except ValidationError as exc:
        raise RuntimeError(f"{model.__name__} does not fit the stored row: {exc}") from None
