"""Schedules: weekly windows, edited as a table (a row per window, a tick per day)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from admin_ui import schedule_table, ui
from admin_ui.client import AdminApi, ApiRefused, ApiUnavailable

NEW = "__new__"


def _editor(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    frame = pd.DataFrame(rows, columns=[*schedule_table.DAYS, "Start", "End"])
    for day in schedule_table.DAYS:
        frame[day] = frame[day].fillna(False).astype(bool)
    config = {
        day: st.column_config.CheckboxColumn(day, width="small", default=False)
        for day in schedule_table.DAYS
    }
    config["Start"] = st.column_config.TextColumn(
        "Start", help="HH:MM, e.g. 07:00", default="08:00", width="small"
    )
    config["End"] = st.column_config.TextColumn(
        "End",
        help="HH:MM; 24:00 = midnight; an end before the start runs past midnight",
        default="18:00",
        width="small",
    )
    edited = st.data_editor(
        frame, column_config=config, num_rows="dynamic", hide_index=True, key=key, width="stretch"
    )
    return edited.to_dict("records")


def editor(client: AdminApi, schedule: dict[str, Any] | None) -> None:
    """Edit (or create, when ``schedule`` is None) one schedule; admins only."""
    key = schedule["id"] if schedule else NEW
    name = st.text_input(
        "Name",
        value=schedule["name"] if schedule else "",
        key=f"sched_name_{key}",
        placeholder="e.g. Office hours",
    )
    rows = (
        schedule_table.windows_to_rows(schedule["windows"])
        if schedule
        else [
            {
                **{d: i < 5 for i, d in enumerate(schedule_table.DAYS)},
                "Start": "08:00",
                "End": "18:00",
            }
        ]
    )
    st.caption(
        "One row per window: tick its days, give start and end. Add rows at the bottom;"
        " select a row and press Delete to remove it."
    )
    edited = _editor(rows, f"sched_rows_{key}")
    save, delete = st.columns([1, 1])
    if save.button(
        "Save schedule" if schedule else "Create schedule",
        type="primary",
        key=f"sched_save_{key}",
        icon=":material/save:",
    ):
        _save(client, schedule, name, edited)
        return  # not saved (the error is shown): a successful save reruns the page
    if schedule and delete.button(
        "Delete schedule", key=f"sched_del_{key}", icon=":material/delete:"
    ):
        try:
            client.delete_schedule(schedule["id"])
        except (ApiRefused, ApiUnavailable) as exc:
            st.error(f"Not deleted: {ui.action_error(exc)}")
            return
        st.session_state["sched_next"] = None
        st.session_state["sched_flash"] = f"Deleted “{schedule['name']}”."
        st.rerun()


def _save(client: AdminApi, schedule: dict[str, Any] | None, name: str, edited: list[dict]) -> None:
    """Save the schedule and rerun the page on it, or show why it was not saved."""
    try:
        windows = schedule_table.rows_to_windows(edited)
    except ValueError as exc:
        st.error(f"Not saved: {exc}.")
        return
    if not name.strip():
        st.error("Not saved: the schedule needs a name.")
        return
    try:
        if schedule:
            saved = client.update_schedule(schedule["id"], name=name.strip(), windows=windows)
        else:
            saved = client.create_schedule(name.strip(), windows)
    except (ApiRefused, ApiUnavailable) as exc:
        st.error(f"Not saved: {ui.action_error(exc)}")
        return
    st.session_state["sched_next"] = saved["id"]
    st.session_state.pop(f"sched_name_{NEW}", None)
    st.session_state.pop(f"sched_rows_{NEW}", None)
    st.session_state["sched_flash"] = f"Saved “{saved['name']}”: " + schedule_table.describe(
        saved["windows"]
    )
    st.rerun()


def page() -> None:
    client = ui.api()
    st.title(":material/calendar_month: Schedules")
    st.caption(
        f"Weekly windows in the door's time zone ({ui.door_tz().key}) during which "
        "the people on a schedule may enter. People without a schedule may enter at "
        "any time within their validity dates."
    )
    flash = st.session_state.pop("sched_flash", None)
    if flash:
        st.success(flash)
    schedules = ui.fetch(client.schedules)
    if schedules:
        st.dataframe(
            pd.DataFrame(
                [
                    {"Schedule": s["name"], "Windows": schedule_table.describe(s["windows"])}
                    for s in schedules
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No schedules yet." + (" Create one below." if ui.is_admin() else ""))
    options = [s["id"] for s in schedules]
    names = {s["id"]: s["name"] for s in schedules}
    if ui.is_admin():
        options.append(NEW)
        names[NEW] = "+ New schedule"
    if not options:
        return
    if "sched_next" in st.session_state:  # just saved or deleted: show that one (or the first)
        wanted = st.session_state.pop("sched_next")
        st.session_state["sched_select"] = wanted if wanted in options else options[0]
    if st.session_state.get("sched_select") not in options:
        st.session_state["sched_select"] = options[0]
    pick = st.selectbox("Schedule", options, format_func=names.get, key="sched_select")
    schedule = next((s for s in schedules if s["id"] == pick), None)
    with st.container(border=True):
        if ui.is_admin():
            editor(client, schedule)
        elif schedule:
            st.subheader(schedule["name"])
            st.dataframe(
                pd.DataFrame(
                    schedule_table.windows_to_rows(schedule["windows"]),
                    columns=[*schedule_table.DAYS, "Start", "End"],
                ),
                hide_index=True,
                width="stretch",
            )


page()
