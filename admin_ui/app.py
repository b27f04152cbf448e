"""The Facegate console: sign-in, then the Door, People, Entry log, Schedules, Sync (and, for
admins, Notifications) pages.

Run with ``python -m admin_ui`` or ``streamlit run admin_ui/app.py``. It reaches its data only
through the admin API (``FACEGATE_UI_API_URL``); the token is kept in this browser session only.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run admin_ui/app.py` puts only admin_ui/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from admin_ui import ui  # noqa: E402
from admin_ui.client import AdminApi, ApiRefused, ApiUnavailable  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"

# a local icon: a material-symbol icon would be fetched from a font CDN the kiosk cannot reach
st.set_page_config(
    page_title="Facegate console",
    page_icon=str(Path(__file__).with_name("favicon.png")),
    layout="wide",
)


def sign_in_page() -> None:
    """The token form; on success the token and its role go into the session only."""
    _, middle, _ = st.columns([1, 1.4, 1])
    with middle:
        st.title(":material/door_front: Facegate")
        st.caption("Door console: live view, people, entry log and schedules.")
        reason = st.session_state.pop("signed_out_reason", None)
        if reason:
            st.warning(reason)
        with st.form("sign_in", border=True):
            token = st.text_input(
                "API token",
                type="password",
                help="Ask the installer for a token: "
                "`python -m admin_api token create --role viewer --name you`",
            )
            submitted = st.form_submit_button("Sign in", type="primary", width="stretch")
        client = AdminApi(ui.api_url(), token.strip() or None)
        if submitted:
            if not token.strip():
                st.error("Enter your API token.")
                return
            try:
                name, role = client.whoami()
            except ApiUnavailable:
                ui.show_api_down(client)
                return
            except ApiRefused as exc:
                if exc.status == 401:
                    st.error("This token is not accepted: unknown or revoked.")
                else:
                    st.error(f"Sign-in failed: {exc.message}")
                return
            st.session_state["token"] = token.strip()
            st.session_state["role"] = role
            st.session_state["token_name"] = name
            st.rerun()
        st.caption(f"Admin API: `{client.base_url}`")


def sidebar() -> None:
    with st.sidebar:
        role = st.session_state.get("role")
        name = st.session_state.get("token_name")
        who = f"**{name}** ({role})" if name else f"**{role}**"
        st.markdown(f"Signed in · {who}" + (" · read-only" if role == "viewer" else ""))
        if st.button("Sign out", icon=":material/logout:", key="sign_out"):
            ui.sign_out()
            st.rerun()
        st.caption(f"API: `{ui.api_url()}`")


def main() -> None:
    if not st.session_state.get("token"):
        st.navigation(
            [st.Page(sign_in_page, title="Sign in", url_path="sign-in")], position="hidden"
        ).run()
        return
    pages = [
        st.Page(VIEWS / "door.py", title="Door", icon=":material/door_front:", default=True),
        st.Page(VIEWS / "people.py", title="People", icon=":material/group:"),
        st.Page(VIEWS / "entry_log.py", title="Entry log", icon=":material/list_alt:"),
        st.Page(VIEWS / "schedules.py", title="Schedules", icon=":material/calendar_month:"),
        st.Page(VIEWS / "sync.py", title="Sync", icon=":material/sync:"),
    ]
    if st.session_state.get("role") == "admin":  # masked secrets all the same: admins only
        pages.append(
            st.Page(
                VIEWS / "notifications.py", title="Notifications", icon=":material/notifications:"
            )
        )
    page = st.navigation(pages)
    sidebar()
    page.run()


main()
