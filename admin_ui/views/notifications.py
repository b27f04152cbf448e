"""Notifications (admins): where alerts go (URLs masked), which kinds, a test button, the outbox."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from admin_ui import ui

STATUS = {
    "sent": "Sent",
    "summarized": "Sent in a summary",
    "pending": "Waiting to retry",
    "sending": "Sending",
    "failed": "Failed (given up)",
    "dropped": "Dropped",
}


def page() -> None:
    st.title(":material/notifications: Notifications")
    if not ui.is_admin():
        st.warning("Notifications are for admin tokens only.")
        return
    client = ui.api()
    config = ui.fetch(client.notifications)
    channels = config.get("channels") or {}
    if not channels:
        st.info(
            "Nothing is configured: set FACEGATE_NOTIFY_URLS (people), FACEGATE_WEBHOOK_URL "
            "or FACEGATE_MQTT_URL in the door's .env, then restart `facegate-notify`.",
            icon=":material/notifications_off:",
        )
    else:
        st.dataframe(
            pd.DataFrame([{"Where": label} for label in channels.values()]),
            hide_index=True,
            width="stretch",
        )
    st.caption("Notified kinds: " + ", ".join(k.replace("_", " ") for k in config["notify_on"]))
    waiting = sum(
        n
        for st_ in (config.get("outbox") or {}).values()
        for s, n in st_.items()
        if s in ("pending", "sending")
    )
    failed = sum(
        n for st_ in (config.get("outbox") or {}).values() for s, n in st_.items() if s == "failed"
    )
    a, b = st.columns(2)
    a.metric("Waiting in the outbox", waiting, border=True)
    b.metric("Failed (given up)", failed, border=True)
    if config.get("notify_urls") and st.button("Send a test message", icon=":material/send:"):
        with st.spinner("Sending…"):
            results = ui.fetch(client.notifications_test)
        for r in results:
            if r["ok"]:
                st.success(f"{r['url']}: {r['answer']}")
            else:
                st.error(f"{r['url']}: {r['answer']}")
    st.subheader("Last sends and failures")
    recent = ui.fetch(client.notifications_recent, 50)
    if not recent:
        st.caption("Nothing sent yet.")
        return
    rows = [
        {
            "Event": ui.local_time(r.get("ts")),
            "Kind": (r.get("kind") or "").replace("_", " "),
            "To": r["channel"],
            "Status": STATUS.get(r["status"], r["status"]),
            "Tries": r["attempts"],
            "Sent": ui.local_time(r.get("sent_at")),
            "Error": r.get("last_error") or "",
        }
        for r in recent
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


page()
