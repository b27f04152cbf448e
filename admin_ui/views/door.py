"""Door: the live view, lock/contact/camera state, today's figures, the last decisions, unlock."""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd
import streamlit as st
from PIL import Image, ImageOps

from admin_ui import stats, ui
from admin_ui.client import DENIED, GRANTED, AdminApi, ApiRefused, ApiUnavailable

REMOTE_UNLOCK = "remote_unlock"

LIVE_VIEW_S = 0.33  # the appliance replaces its frame at most 4 times a second
STATUS_S = 1.0
TODAY_S = 10.0
PORTRAIT_HEIGHT = 520  # px: a portrait frame taller than this would push everything down


def _display_width(jpeg: bytes) -> int | str:
    """Landscape frames fill the column; a portrait one is kept to a sensible height."""
    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            width, height = img.size
    except (OSError, ValueError):
        return "stretch"
    return "stretch" if width >= height else max(200, int(PORTRAIT_HEIGHT * width / height))


def _title(door: str | None) -> str:
    return (door or "door").replace("-", " ").replace("_", " ").capitalize()


def _greyed(jpeg: bytes) -> bytes:
    """The frame in faded grey: plainly not a live picture."""
    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            grey = ImageOps.grayscale(img).convert("RGB")
    except (OSError, ValueError):
        return jpeg
    faded = Image.blend(grey, Image.new("RGB", grey.size, "white"), 0.45)
    out = io.BytesIO()
    faded.save(out, format="JPEG", quality=80)
    return out.getvalue()


@st.fragment(run_every=LIVE_VIEW_S)
def live_view(client: AdminApi) -> None:
    try:
        running = ui.kiosk_running(client.door_status())
        shot = client.door_frame_stamped()
    except ApiUnavailable:
        st.error(
            "Live view unavailable: the admin API is not reachable.", icon=":material/cloud_off:"
        )
        return
    except ApiRefused as exc:
        st.warning(f"Live view unavailable: {exc.message}")
        return
    if shot is None:
        st.info(
            "No live picture: the appliance is not running or has no camera.",
            icon=":material/videocam_off:",
        )
        return
    frame, taken = shot
    # the frame's own time, from the appliance: never the console's clock
    when = f"taken {ui.local_time(taken)} ({ui.ago(taken)})" if taken else "time unknown"
    if running:
        st.image(frame, width=_display_width(frame), caption=f"Live view · {when}")
    else:
        st.image(
            _greyed(frame),
            width=_display_width(frame),
            caption=f"Last frame, kiosk offline · {when}",
        )


def _warnings(app: dict) -> None:
    """The appliance's start-up warnings that matter, repeated where the admin looks."""
    if app.get("gallery_persons") == 0:
        st.warning(
            "Nobody is enrolled: the door lets nobody in. Add people on the People page.",
            icon=":material/person_off:",
        )
    if app.get("simulated"):
        st.warning(
            "Simulated door: no relay or sensor is connected (FACEGATE_PIN_FACTORY=mock). "
            "Decisions are logged, the door itself never opens.",
            icon=":material/developer_board_off:",
        )


@st.fragment(run_every=STATUS_S)
def door_state(client: AdminApi) -> None:
    try:
        status = client.door_status()
    except ApiUnavailable:
        ui.show_api_down(client)
        return
    app = status.get("appliance") or {}
    online = ui.kiosk_running(status)
    _appliance_banner(status, app, online)
    _door_metrics(app, online)
    if app.get("fault"):
        st.error(f"Door hardware fault: {app['fault']}")
    if app.get("event_write_error"):
        st.error(f"The entry log cannot be written: {app['event_write_error']}")
    last = app.get("last_decision")
    if last:
        st.caption(f"Last decision: {_decision_text(last)} at {ui.local_time(last.get('ts'))}")


def _appliance_banner(status: dict, app: dict, online: bool) -> None:
    """Running (with its warnings), offline since when, or not reported yet."""
    if online:
        st.success(
            f"Appliance running · status {status.get('status_age_s', 0):.0f} s old",
            icon=":material/check_circle:",
        )
        _warnings(app)
    elif app:
        st.error(
            f"Appliance **offline** · last seen {ui.ago(app.get('updated_at'))}",
            icon=":material/error:",
        )
    else:
        st.warning("The appliance has not reported yet.", icon=":material/help:")


def _door_metrics(app: dict, online: bool) -> None:
    """Lock, door, camera and gallery; a stopped kiosk's lock and door show as unknown."""
    # a stopped kiosk's last row says nothing true about the lock or the door now
    locked = app.get("locked") if online else None
    st.metric(
        "Lock",
        "—" if locked is None else "Locked" if locked else "Unlocked",
        border=True,
        delta=None if online else "kiosk offline" if app else None,
        delta_color="off",
        delta_arrow="off",
    )
    door_open, alarm = (app.get("door_open"), app.get("alarm")) if online else (None, None)
    a, b = st.columns(2)
    a.metric(
        "Door",
        "—" if door_open is None else "Open" if door_open else "Closed",
        border=True,
        delta_arrow="off",
        delta=f"alarm: {alarm.replace('_', ' ')}"
        if alarm
        else "no contact sensor"
        if online and door_open is None
        else None,
        delta_color="inverse" if alarm else "off",
    )
    camera_ok = app.get("camera_ok") if online else None
    b.metric(
        "Camera",
        "OK" if camera_ok else "Fault" if camera_ok is False else "Stopped" if app else "—",
        border=True,
        delta=f"{app.get('fps', 0):.1f} fps"
        if camera_ok
        else app.get("camera_error")
        if online
        else None,
        delta_color="off" if camera_ok else "inverse",
        delta_arrow="off",
    )
    people = app.get("gallery_persons", 0)
    st.metric(
        "Enrolled",
        f"{people} {'person' if people == 1 else 'people'}" if app else "—",
        delta=f"{app.get('gallery_faces', 0)} faces" if app else None,
        delta_color="off",
        delta_arrow="off",
        border=True,
    )


def _decision_text(d: dict) -> str:
    """'**Ann** granted', '**Unknown face** denied', '**Bo** denied (outside schedule)'."""
    if d.get("kind") == GRANTED:
        return f"**{d.get('person_name') or 'unknown'}** granted"
    if not d.get("person_name"):
        reason = d.get("reason")
        extra = "" if reason in (None, "unknown_face") else f" ({ui.reason_label(reason)})"
        return f"**Unknown face** denied{extra}"
    return f"**{d['person_name']}** denied ({ui.reason_label(d.get('reason'))})"


@st.fragment(run_every=TODAY_S)
def today(client: AdminApi) -> None:
    tz = ui.door_tz()
    midnight = ui.start_of_local_day(datetime.now(tz).date(), tz)
    try:
        df = stats.events_frame(
            client.events_csv(since=midnight.isoformat(), kinds=(GRANTED, DENIED)), tz
        )
        recent = client.events(kinds=(GRANTED, DENIED, REMOTE_UNLOCK), limit=8).items
    except ApiUnavailable:
        return  # the status block above already says so
    totals = stats.outcome_totals(df)
    a, b = st.columns(2)
    a.metric("Granted today", totals["Granted"], border=True)
    b.metric("Denied today", totals["Denied"], border=True)
    st.subheader("Last decisions")
    if not recent:
        st.caption("No decisions yet.")
        return
    table = pd.DataFrame(
        [
            {
                "Time": ui.local_time(e["ts"]),
                "Decision": ui.kind_label(e["kind"]),
                "Person": _who(e),
                "Distance": e.get("distance"),
                "Reason": ui.reason_label(e.get("reason")),
            }
            for e in recent
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={"Distance": st.column_config.NumberColumn(format="%.3f")},
    )


def _who(e: dict) -> str:
    if e.get("kind") == REMOTE_UNLOCK:
        by = (e.get("details") or {}).get("requested_by")
        return f"by {by}" if by else "console"
    return e.get("person_name") or "unknown"


@st.fragment(run_every=STATUS_S)
def unlock_controls(client: AdminApi) -> None:
    """Admin only: unlock once, after a confirmation; only while the kiosk runs."""
    st.subheader("Manual unlock")
    try:
        running = ui.kiosk_running(client.door_status())
    except ApiUnavailable:
        running = False
    if not running:
        st.session_state["confirm_unlock"] = False
        st.button("Unlock now…", icon=":material/lock_open:", key="unlock", disabled=True)
        st.caption(
            "Unlock is unavailable while the kiosk is not running: nothing would carry it out."
        )
        return
    if not st.session_state.get("confirm_unlock"):
        if st.button("Unlock now…", icon=":material/lock_open:", key="unlock"):
            st.session_state["confirm_unlock"] = True
            st.rerun()
    else:
        st.warning("Unlock the door now? It opens for one pulse and is logged under your token.")
        yes, no = st.columns(2)
        if yes.button("Yes, unlock", type="primary", key="unlock_confirm"):
            st.session_state["confirm_unlock"] = False
            try:
                result = client.unlock()
                st.session_state["unlock_result"] = ("ok", f"Unlocked ({result.get('result')}).")
            except (ApiRefused, ApiUnavailable) as exc:
                st.session_state["unlock_result"] = ("error", ui.action_error(exc))
            st.rerun()
        if no.button("Cancel", key="unlock_cancel"):
            st.session_state["confirm_unlock"] = False
            st.rerun()
    result = st.session_state.get("unlock_result")
    if result:
        (st.success if result[0] == "ok" else st.error)(result[1])


def page() -> None:
    client = ui.api()
    # the door's name from the settings, so that the title stays when the API is down
    st.title(f":material/door_front: {_title(ui.settings().door_name)}")
    left, right = st.columns([3, 2], gap="large")
    with left:
        live_view(client)
    with right:
        door_state(client)
        if ui.is_admin():
            unlock_controls(client)
    st.divider()
    today(client)
    st.caption(f"Times in {ui.door_tz().key}.")


page()
