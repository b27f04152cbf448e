"""Door: the live view, lock/contact/camera state, today's figures, the last decisions, unlock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from admin_ui import stats, ui
from admin_ui.client import DENIED, GRANTED, AdminApi, ApiError, ApiUnavailable

LIVE_VIEW_S = 0.33  # the appliance replaces its frame at most 4 times a second
STATUS_S = 1.0
TODAY_S = 10.0


def _door_state(app: dict[str, Any]) -> tuple[str, str]:
    if app.get("door_open") is None:
        return "Door", "no contact sensor"
    return "Door", "open" if app["door_open"] else "closed"


@st.fragment(run_every=LIVE_VIEW_S)
def live_view(client: AdminApi) -> None:
    try:
        frame = client.door_frame()
    except ApiUnavailable:
        st.error("Live view unavailable: the admin API is not reachable.",
                 icon=":material/cloud_off:")
        return
    except ApiError as exc:
        st.warning(f"Live view unavailable: {exc.message}")
        return
    if frame is None:
        st.info("No live picture: the appliance is not running or has no camera.",
                icon=":material/videocam_off:")
        return
    st.image(frame, width="stretch", caption=f"Live view · {datetime.now():%H:%M:%S}")


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
        st.success(f"Appliance running · status {status.get('status_age_s', 0):.0f} s old",
                   icon=":material/check_circle:")
    elif app:
        st.error(f"Appliance **offline** · last seen {ui.ago(app.get('updated_at'))}",
                 icon=":material/error:")
    else:
        st.warning("The appliance has not reported yet.", icon=":material/help:")
    a, b = st.columns(2)
    locked = app.get("locked")
    a.metric("Lock", "—" if locked is None else "Locked" if locked else "Unlocked",
             border=True)
    label, door = _door_state(app)
    alarm = app.get("alarm")
    b.metric(label, door.capitalize() if app else "—", border=True,
             delta=f"alarm: {alarm.replace('_', ' ')}" if alarm else None,
             delta_color="inverse")
    c, d = st.columns(2)
    camera_ok = app.get("camera_ok")
    c.metric("Camera", "—" if camera_ok is None else "OK" if camera_ok else "Fault", border=True,
             delta=f"{app.get('fps', 0):.1f} fps" if camera_ok else app.get("camera_error"),
             delta_color="off" if camera_ok else "inverse")
    d.metric("Enrolled", f"{app.get('gallery_persons', 0)} people" if app else "—",
             delta=f"{app.get('gallery_faces', 0)} faces" if app else None, delta_color="off",
             border=True)
    if app.get("fault"):
        st.error(f"Door hardware fault: {app['fault']}")
    if app.get("event_write_error"):
        st.error(f"The entry log cannot be written: {app['event_write_error']}")
    last = app.get("last_decision")
    if last:
        who = last.get("person_name") or "unknown face"
        verdict = "granted" if last.get("kind") == GRANTED else \
            f"denied ({ui.reason_label(last.get('reason'))})"
        st.caption(f"Last decision: **{who}** {verdict} at {ui.local_time(last.get('ts'))}")


@st.fragment(run_every=TODAY_S)
def today(client: AdminApi) -> None:
    tz = ui.door_tz()
    midnight = ui.start_of_local_day(datetime.now(tz).date(), tz)
    try:
        df = stats.events_frame(client.events_csv(since=midnight.isoformat(),
                                                  kinds=(GRANTED, DENIED)), tz)
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
    table = pd.DataFrame([{
        "Time": ui.local_time(e["ts"], "%d %b %H:%M:%S"),
        "Decision": ui.kind_label(e["kind"]),
        "Person": e.get("person_name") or "unknown",
        "Distance": e.get("distance"),
        "Reason": ui.reason_label(e.get("reason")),
    } for e in recent])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"Distance": st.column_config.NumberColumn(format="%.3f")})


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
            except (ApiError, ApiUnavailable) as exc:
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
    st.title(f":material/door_front: {status.get('door') or 'Door'}")
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
