"""What every page shares: the signed-in API client, the "API is down" notice, time formatting.

The token lives only in ``st.session_state`` (never in a file, a cookie or the URL). A failed
call is never cached: every rerun asks the API again, so a page recovers as soon as it is back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import streamlit as st
from loguru import logger

from admin_ui.client import DENIED, GRANTED, AdminApi, ApiRefused, ApiUnavailable
from admin_ui.settings import ConsoleSettings, ConsoleSettingsError, load_console_settings

T = TypeVar("T")
#: The appliance rewrites its status row twice a second: older than this, it is not running.
KIOSK_OFFLINE_AFTER_S = 5.0
#: How often a page that found the API down checks whether it is back.
RECOVERY_CHECK_S = 2.0

KIND_LABELS = {
    GRANTED: "Granted",
    DENIED: "Denied",
    "door_forced": "Door forced open",
    "door_held_open": "Door held open",
    "door_closed": "Door closed",
    "exit_request": "Exit button",
    "door_fault": "Door fault",
    "remote_unlock": "Remote unlock",
}
REASON_LABELS = {
    "unknown_face": "unknown face",
    "disabled": "person disabled",
    "not_yet_valid": "not yet valid",
    "expired": "validity expired",
    "outside_schedule": "outside schedule",
    "cooldown": "just entered",
    "liveness_failed": "liveness check failed (photo or screen?)",
}


def settings() -> ConsoleSettings:
    """The console's settings (API address, door time zone); a bad setting stops the page."""
    try:
        return load_console_settings()
    except ConsoleSettingsError as exc:
        st.error(f"The console's settings are invalid: {exc}")
        st.stop()
        raise  # st.stop raises; this keeps type checkers calm


def api_url() -> str:
    return settings().ui_api_url


def api() -> AdminApi:
    """The client for the signed-in session (token from session state)."""
    return AdminApi(api_url(), st.session_state.get("token"))


def is_admin() -> bool:
    return st.session_state.get("role") == "admin"


def sign_out(reason: str | None = None) -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if reason:
        st.session_state["signed_out_reason"] = reason


def show_api_down(client: AdminApi | None = None) -> None:
    """Say plainly that the API is unreachable, and rerun the page once it answers again."""
    client = client or api()
    st.error(
        f"**The admin API is not reachable** at `{client.base_url}`. The door keeps working on "
        "its own; this console shows nothing until the API is back. Check that the "
        "`facegate-api` service is running. This page reloads by itself when it answers.",
        icon=":material/cloud_off:",
    )
    _wait_for_api(client.base_url)


@st.fragment(run_every=RECOVERY_CHECK_S)
def _wait_for_api(base_url: str) -> None:
    if AdminApi(base_url).health():
        st.rerun()
    st.caption(f"Last checked {datetime.now():%H:%M:%S}.")


def fetch(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the API for a page's data; on failure show why and stop the page there.

    An unreachable API gets the "API down" notice; a revoked token signs the session out.
    """
    try:
        return fn(*args, **kwargs)
    except ApiUnavailable as exc:
        logger.warning("console: {}", exc)
        show_api_down()
        st.stop()
    except ApiRefused as exc:
        if exc.status == 401:
            sign_out("Your token is no longer accepted (revoked?). Sign in again.")
            st.rerun()
        st.error(f"The API refused the request: {exc.message}")
        st.stop()
    raise AssertionError("unreachable")


def kiosk_running(status: dict[str, Any]) -> bool:
    """The appliance is running now: it says so and its status row is a few seconds fresh.

    Anything less (no row, a stopped kiosk's last row, a stale one) counts as not running: the
    console must never offer a live view or an unlock that nothing would carry out.
    """
    age = status.get("status_age_s")
    return bool(status.get("appliance_online")) and age is not None and age <= KIOSK_OFFLINE_AFTER_S


def action_error(exc: Exception) -> str:
    """A one-line explanation of a failed change, for st.error."""
    if isinstance(exc, ApiUnavailable):
        return "The admin API is not reachable; nothing was changed. Try again when it is back."
    if isinstance(exc, ApiRefused):
        return exc.message[:1].upper() + exc.message[1:]
    return str(exc)


# --- time -------------------------------------------------------------------------------------


def door_tz() -> ZoneInfo:
    return settings().tz


def parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=ZoneInfo("UTC"))


#: The console's one date format (sortable, unambiguous in every country).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def local_time(text: str | None, fmt: str = TIME_FORMAT) -> str:
    """An API timestamp (UTC ISO-8601) in the door's time zone; "" for none."""
    ts = parse_ts(text)
    return ts.astimezone(door_tz()).strftime(fmt) if ts else ""


def ago(text: str | None, now: datetime | None = None) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '2 days ago'; 'never' for none."""
    ts = parse_ts(text)
    if ts is None:
        return "never"
    seconds = ((now or datetime.now(ZoneInfo("UTC"))) - ts).total_seconds()
    if seconds < 0:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def start_of_local_day(day: Any, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def end_of_local_day(day: Any, tz: ZoneInfo) -> datetime:
    return start_of_local_day(day, tz) + timedelta(days=1)


def kind_label(kind: str | None) -> str:
    return KIND_LABELS.get(kind or "", (kind or "").replace("_", " ").capitalize())


def reason_label(reason: str | None) -> str:
    return REASON_LABELS.get(reason or "", (reason or "").replace("_", " "))
