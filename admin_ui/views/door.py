"""Door: the live view, lock/contact/camera state, today's figures, the last decisions, unlock."""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd
import streamlit as st
from PIL import Image

from admin_ui import stats, ui
from admin_ui.client import DENIED, GRANTED, AdminApi, ApiRefused, ApiUnavailable

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


@st.fragment(run_every=LIVE_VIEW_S)
def live_view(client: AdminApi) -> None:
    try:
        frame = client.door_frame()
    except ApiUnavailable:
        st.error(
            "Live view unavailable: the admin API is not reachable.", icon=":material/cloud_off:"
        )
        return
    except ApiRefused as exc:
        st.warning(f"Live view unavailable: {exc.message}")
        return
    if frame is None:
        st.info(
            "No live picture: the appliance is not running or has no camera.",
            icon=":material/videocam_off:",
        )
        return
    st.image(frame, width=_display_width(frame), caption=f"Live view · {datetime.now():%H:%M:%S}")


@st.fragment(run_every=STATUS_S)
def door_state(client: AdminApi) -> None:
    try:
        status = client.door_status()
    except ApiUnavailable:
        ui.show_api_down(client)
        return
    app = status.get("appliance") or {}
    online = bool(status.get("appliance_online"))
    if online:
        st.success(
            f"Appliance running · status {status.get('status_age_s', 0):.0f} s old",
            icon=":material/check_circle:",
        )
    elif app:
        st.error(
            f"Appliance **offline** · last seen {ui.ago(app.get('updated_at'))}",
            icon=":material/error:",
        )
    else:
        st.warning("The appliance has not reported yet.", icon=":material/help:")
    a, b = st.columns(2)
    locked = app.get("locked")
    a.metric("Lock", "—" if locked is None else "Locked" if locked else "Unlocked", border=True)
    door_open, alarm = app.get("door_open"), app.get("alarm")
    b.metric(
        "Door",
        "—" if door_open is None else "Open" if door_open else "Closed",
        border=True,
        delta_arrow="off",
        delta=f"alarm: {alarm.replace('_', ' ')}"
        if alarm
        else "no contact sensor"
        if app and door_open is None
        else None,
        delta_color="inverse" if alarm else "off",
    )
    c, d = st.columns(2)
    camera_ok = app.get("camera_ok") if online else None
    c.metric(
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
    d.metric(
        "Enrolled",
        f"{people} {'person' if people == 1 else 'people'}" if app else "—",
        delta=f"{app.get('gallery_faces', 0)} faces" if app else None,
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    if app.get("fault"):
        st.error(f"Door hardware fault: {app['fault']}")
    if app.get("event_write_error"):
        st.error(f"The entry log cannot be written: {app['event_write_error']}")
    last = app.get("last_decision")
    if last:
        who = last.get("person_name") or "unknown face"
        verdict = (
            "granted"
            if last.get("kind") == GRANTED
            else f"denied ({ui.reason_label(last.get('reason'))})"
        )
        st.caption(f"Last decision: **{who}** {verdict} at {ui.local_time(last.get('ts'))}")


@st.fragment(run_every=TODAY_S)
def today(client: AdminApi) -> None:
    tz = ui.door_tz()
    midnight = ui.start_of_local_day(datetime.now(tz).date(), tz)
    try:
        df = stats.events_frame(
            client.events_csv(since=midnight.isoformat(), kinds=(GRANTED, DENIED)), tz
        )
        recent = client.events(kinds=(GRANTED, DENIED), limit=8).items
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
                "Time": ui.local_time(e["ts"], "%d %b %H:%M:%S"),
                "Decision": ui.kind_label(e["kind"]),
                "Person": e.get("person_name") or "unknown",
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


def unlock_controls(client: AdminApi) -> None:
    """Admin only: unlock once, after a confirmation."""
    st.subheader("Manual unlock")
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
    status = ui.fetch(client.door_status)
    st.title(f":material/door_front: {_title(status.get('door'))}")
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
