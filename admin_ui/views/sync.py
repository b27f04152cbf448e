"""Sync: is central sync configured, when did it last work, what is waiting, heartbeats."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from admin_ui import ui

STEPS = {
    "pull": "Pull people and schedules",
    "push_people": "Push people",
    "push_events": "Push entries",
    "heartbeat": "Heartbeat",
}


def _figures(report: dict[str, Any]) -> str:
    skip = {"at", "seconds"}
    return ", ".join(
        f"{k.replace('_', ' ')} {v}"
        for k, v in report.items()
        if k not in skip and not isinstance(v, dict | list)
    )


def sync_block(sync: dict[str, Any] | None) -> None:
    if not sync:
        st.info(
            "Central sync has not run on this door: it is not configured (no Supabase "
            "settings) or the `facegate-sync` service has not started. The door works "
            "on its own either way.",
            icon=":material/cloud_off:",
        )
        return
    configured = bool(sync.get("configured"))
    state = sync.get("state") or ("off" if not configured else "unknown")
    a, b, c, d = st.columns(4)
    a.metric("Configured", "Yes" if configured else "No", border=True)
    b.metric("State", state.capitalize(), border=True)
    c.metric(
        "Last success",
        ui.ago(sync.get("last_success")),
        border=True,
        help=ui.local_time(sync.get("last_success")) or None,
    )
    backlog = sync.get("backlog")
    d.metric(
        "Backlog",
        "—" if backlog is None else backlog,
        border=True,
        help="Entries and changes waiting to go up to the central database",
    )
    if sync.get("quarantined"):
        st.warning(
            f"{sync['quarantined']} record(s) were refused by the central database and "
            "are set aside (quarantined); see the sync log."
        )
    error = sync.get("last_error")
    if error and state == "error":
        st.error(
            f"Last error ({ui.ago(error.get('at'))}, during {error.get('step')}): "
            f"{error.get('message')}"
        )
    elif error:
        st.caption(
            f"Last error, since recovered: {ui.local_time(error.get('at'))} during "
            f"{error.get('step')}: {error.get('message')}"
        )
    rows = [
        {
            "Step": label,
            "Last run": ui.local_time((sync.get(f"last_{step}") or {}).get("at")),
            "Ago": ui.ago((sync.get(f"last_{step}") or {}).get("at")),
            "Figures": _figures(sync.get(f"last_{step}") or {}),
        }
        for step, label in STEPS.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def heartbeats(status: dict[str, Any]) -> None:
    st.subheader("Heartbeats")
    app = status.get("appliance") or {}
    sync = status.get("sync") or {}
    rows = [
        {
            "Device": f"{status.get('door') or 'this door'} · appliance",
            "Last heartbeat": ui.local_time(app.get("updated_at")),
            "Ago": ui.ago(app.get("updated_at")),
            "State": "online" if status.get("appliance_online") else "offline",
        },
        {
            "Device": f"{status.get('door') or 'this door'} · sync to central",
            "Last heartbeat": ui.local_time((sync.get("last_heartbeat") or {}).get("at")),
            "Ago": ui.ago((sync.get("last_heartbeat") or {}).get("at")),
            "State": sync.get("state") or "not running",
        },
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "Other doors' heartbeats are kept in the central database; this door's API "
        "reports only its own."
    )


def page() -> None:
    st.title(":material/sync: Sync")
    status = ui.fetch(ui.api().door_status)
    sync_block(status.get("sync"))
    heartbeats(status)


page()
