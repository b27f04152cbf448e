"""The console's only way to its data: a small typed client of the admin API.

The console never opens the SQLite file, so it works the same on the kiosk's screen and on a
laptop on the building network. Two failures matter to a page and are told apart here:
:class:`ApiUnavailable` (the API cannot be reached: say so and retry later) and :class:`ApiRefused`
(the API answered with its error shape: show its message).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

Role = Literal["admin", "viewer"]
#: The decision kinds of the entry log; the door's own events (forced, held open, ...) follow.
GRANTED = "access_granted"
DENIED = "access_denied"
DOOR_KINDS = ("door_forced", "door_held_open", "door_closed", "exit_request", "door_fault")

#: Short reads (status, lists); enrolment runs face detection and gets much longer.
TIMEOUT_S = 10.0
ENROL_TIMEOUT_S = 120.0
#: An unlock is followed this often, and given up after this long (the API expires it after 3 s
#: untaken; a running one finishes within its pulse).
UNLOCK_POLL_S = 0.2
UNLOCK_GIVE_UP_S = 15.0


class ApiUnavailable(Exception):
    """The admin API cannot be reached (not running, wrong address, or timed out)."""


class ApiRefused(Exception):
    """The API answered a request with an error; ``code`` and ``message`` come from its error
    shape (not to be confused with the server's own ``admin_api.errors.ApiError``)."""

    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any]) -> None:
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class PhotoResult:
    """What enrolment made of one photo."""

    source: str
    accepted: bool
    message: str = ""
    code: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhotoResult:
        return cls(
            source=str(data.get("source") or "photo"),
            accepted=bool(data.get("accepted")),
            message=str(data.get("message") or ""),
            code=data.get("code"),
        )


@dataclass(frozen=True)
class EnrolOutcome:
    """An enrolment request's result: photos accepted, and each photo's own verdict."""

    enrolled: int
    results: list[PhotoResult] = field(default_factory=list)
    error: str | None = None  # the request as a whole was refused (and why)


@dataclass(frozen=True)
class EventPage:
    items: list[dict[str, Any]]
    offset: int
    next_offset: int | None


@dataclass(frozen=True)
class PeoplePage:
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


class AdminApi:
    """One signed-in console session's view of the API (``base_url`` ends before /api/v1)."""

    def __init__(
        self, base_url: str, token: str | None = None, *, session: requests.Session | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = session or requests.Session()

    # --- plumbing ------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, timeout: float = TIMEOUT_S, **kwargs: Any
    ) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base_url}/api/v1{path}"
        try:
            resp = self._http.request(method, url, headers=headers, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ApiUnavailable(f"the admin API at {self.base_url} is not reachable") from exc
        if resp.status_code >= 400:
            raise _error_from(resp)
        return resp

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # --- session -------------------------------------------------------------------------------

    def health(self) -> bool:
        """True when the API answers its (token-free) health check."""
        try:
            self._request("GET", "/health", timeout=3.0)
        except (ApiUnavailable, ApiRefused):
            return False
        return True

    def whoami(self) -> tuple[str, Role]:
        """The token's name and role (``GET /me``); ApiRefused 401 for an unknown or revoked
        token."""
        me = self._json("GET", "/me")
        if me.get("role") not in ("admin", "viewer"):
            raise ApiRefused(500, "bad_role", f"the API reported an unknown role {me!r}", {})
        return str(me.get("name", "")), me["role"]

    def role(self) -> Role:
        """The token's role. Raises ApiRefused 401 for an unknown or revoked token."""
        return self.whoami()[1]

    # --- door ----------------------------------------------------------------------------------

    def door_status(self) -> dict[str, Any]:
        return self._json("GET", "/door/status")

    def door_frame_stamped(self) -> tuple[bytes, str | None] | None:
        """The latest frame and when the appliance took it (UTC ISO 8601), or None if none."""
        try:
            resp = self._request("GET", "/door/frame", timeout=3.0)
        except ApiRefused as exc:
            if exc.status == 404:
                return None
            raise
        return resp.content, resp.headers.get("X-Frame-Time") or None

    def unlock(
        self, *, poll_s: float = UNLOCK_POLL_S, give_up_s: float = UNLOCK_GIVE_UP_S
    ) -> dict[str, Any]:
        """Unlock once and follow the command until the appliance has carried it out.

        The API answers at once (202) and the appliance's answer is polled, so no API thread
        waits for the door. Raises ApiRefused when the appliance failed or did not answer.
        """
        command = self._json("POST", "/door/unlock")
        deadline = time.monotonic() + give_up_s
        # the appliance is another process that answers through the store: polling is the protocol
        while command["status"] in ("pending", "running") and time.monotonic() < deadline:
            time.sleep(poll_s)
            command = self._json("GET", f"/door/commands/{command['command_id']}")
        if command["status"] == "done":
            return command
        if command["status"] == "failed":
            raise ApiRefused(
                502,
                "unlock_failed",
                f"the appliance could not unlock: {command['result'] or 'no reason'}",
                {"command_id": command["command_id"]},
            )
        raise ApiRefused(
            504,
            "appliance_not_answering",
            command.get("result") or "the appliance did not answer in time",
            {"command_id": command["command_id"]},
        )

    # --- notifications (admin only) -----------------------------------------------------------

    def notifications(self) -> dict[str, Any]:
        return self._json("GET", "/notifications")

    def notifications_recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._json("GET", "/notifications/recent", params={"limit": limit})["items"]

    def notifications_test(self) -> list[dict[str, Any]]:
        # one try per URL; an SMTP server may take several seconds to answer
        return self._json("POST", "/notifications/test", timeout=60.0)["results"]

    # --- people and faces ----------------------------------------------------------------------

    def people(
        self,
        *,
        search: str | None = None,
        active: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> PeoplePage:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if search:
            params["search"] = search
        if active is not None:
            params["active"] = "true" if active else "false"
        data = self._json("GET", "/people", params=params)
        return PeoplePage(
            data["items"], int(data["total"]), int(data["offset"]), int(data["limit"])
        )

    def all_people(self) -> list[dict[str, Any]]:
        """Every person (for name look-ups and filters), page by page."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.people(limit=500, offset=len(out))
            out += page.items
            if not page.items or len(out) >= page.total:
                return out

    def person(self, person_id: str) -> dict[str, Any]:
        return self._json("GET", f"/people/{person_id}")

    def create_person(self, **fields: Any) -> dict[str, Any]:
        return self._json("POST", "/people", json=_without_none(fields, keep=()))

    def update_person(self, person_id: str, **changes: Any) -> dict[str, Any]:
        """Send exactly ``changes`` (None clears an optional field)."""
        return self._json("PATCH", f"/people/{person_id}", json=changes)

    def delete_person(self, person_id: str) -> int:
        """Delete the person and their faces; returns the number of faces deleted."""
        return int(self._json("DELETE", f"/people/{person_id}").get("faces_deleted", 0))

    def faces(self, person_id: str) -> list[dict[str, Any]]:
        return self._json("GET", f"/people/{person_id}/faces")["items"]

    def delete_face(self, person_id: str, face_id: str) -> None:
        self._request("DELETE", f"/people/{person_id}/faces/{face_id}")

    def enrol(self, person_id: str, photos: Sequence[tuple[str, bytes]]) -> EnrolOutcome:
        """Enrol ``photos`` (name, bytes) for a person; every photo gets its own verdict.

        The API answers 201 when at least one photo was accepted and 413/415/422 (with the
        per-photo results where it has them) when none was; both come back as an outcome.
        """
        files = [("photos", (name, data, _mime(name))) for name, data in photos]
        try:
            data = self._json(
                "POST", f"/people/{person_id}/faces", files=files, timeout=ENROL_TIMEOUT_S
            )
        except ApiRefused as exc:
            if exc.status not in (400, 413, 415, 422):
                raise
            results = [PhotoResult.from_json(r) for r in exc.extra.get("results") or []]
            if not results:  # refused as a whole (too big, no files): every photo shares it
                results = [PhotoResult(name, False, exc.message, exc.code) for name, _ in photos]
            return EnrolOutcome(0, results, exc.message)
        return EnrolOutcome(
            int(data["enrolled"]), [PhotoResult.from_json(r) for r in data.get("results") or []]
        )

    # --- schedules -----------------------------------------------------------------------------

    def schedules(self) -> list[dict[str, Any]]:
        return self._json("GET", "/schedules")["items"]

    def create_schedule(self, name: str, windows: list[dict[str, Any]]) -> dict[str, Any]:
        return self._json("POST", "/schedules", json={"name": name, "windows": windows})

    def update_schedule(
        self,
        schedule_id: str,
        *,
        name: str | None = None,
        windows: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        body = _without_none({"name": name, "windows": windows}, keep=())
        return self._json("PATCH", f"/schedules/{schedule_id}", json=body)

    def delete_schedule(self, schedule_id: str) -> None:
        self._request("DELETE", f"/schedules/{schedule_id}")

    # --- entry log -----------------------------------------------------------------------------

    def events(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        kinds: Iterable[str] = (),
        person_id: str | None = None,
        door: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> EventPage:
        params = _event_filters(since, until, kinds, person_id, door)
        data = self._json("GET", "/events", params={**params, "limit": limit, "offset": offset})
        return EventPage(data["items"], int(data["offset"]), data.get("next_offset"))

    def events_csv(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        kinds: Iterable[str] = (),
        person_id: str | None = None,
        door: str | None = None,
    ) -> bytes:
        """Every matching event as the API's CSV export (for download and for the charts)."""
        params = _event_filters(since, until, kinds, person_id, door)
        return self._request("GET", "/events.csv", params=params, timeout=60.0).content

    def snapshot(self, event_id: str) -> bytes | None:
        try:
            return self._request("GET", f"/events/{event_id}/snapshot").content
        except ApiRefused as exc:
            if exc.status == 404:
                return None
            raise


def _error_from(resp: requests.Response) -> ApiRefused:
    try:
        err = resp.json()["error"]
        extra = {k: v for k, v in err.items() if k not in ("code", "message")}
        return ApiRefused(resp.status_code, str(err["code"]), str(err["message"]), extra)
    except (ValueError, KeyError, TypeError):  # not the API's shape (a proxy's error page)
        text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else resp.reason
        return ApiRefused(resp.status_code, "http_error", f"HTTP {resp.status_code}: {text}", {})


def _event_filters(
    since: str | None,
    until: str | None,
    kinds: Iterable[str],
    person_id: str | None,
    door: str | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"since": since, "until": until, "person_id": person_id, "door": door}
    kinds = list(kinds)
    if kinds:
        params["kind"] = ",".join(kinds)
    return _without_none(params, keep=())


def _without_none(values: dict[str, Any], keep: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None or k in keep}


def _mime(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".png"):
        return "image/png"
    if lower.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    if lower.endswith(".webp"):
        return "image/webp"
    return "application/octet-stream"
