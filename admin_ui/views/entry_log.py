"""Entry log: filters, the paged table with names and reasons, snapshots, CSV, charts."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from admin_ui import stats, ui
from admin_ui.client import DENIED, DOOR_KINDS, GRANTED, ApiRefused, ApiUnavailable

ROWS_PER_PAGE = 50
COLOURS = alt.Scale(domain=list(stats.OUTCOMES), range=["#2e9e5b", "#d9534f"])
KIND_CHOICES = [GRANTED, DENIED, *DOOR_KINDS]


def _reset_paging() -> None:
    st.session_state["log_offset"] = 0


def filters() -> dict:
    tz = ui.door_tz()
    today = datetime.now(tz).date()
    client = ui.api()
    people = ui.fetch(client.all_people)
    with st.container(border=True):
        a, b, c, d = st.columns([2, 2, 2, 1])
        span = a.date_input(
            "Days",
            value=(today - timedelta(days=6), today),
            max_value=today,
            format="YYYY-MM-DD",
            key="log_days",
            on_change=_reset_paging,
        )
        kinds = b.multiselect(
            "Kind",
            KIND_CHOICES,
            default=[GRANTED, DENIED],
            format_func=ui.kind_label,
            key="log_kinds",
            on_change=_reset_paging,
            placeholder="Everything",
        )
        ids = [None, *[p["id"] for p in people]]
        names = {p["id"]: p["name"] for p in people}
        person = c.selectbox(
            "Person",
            ids,
            format_func=lambda i: names.get(i, "Everyone"),
            key="log_person",
            on_change=_reset_paging,
        )
        door = d.text_input("Door", key="log_door", placeholder="all", on_change=_reset_paging)
    first, last = (
        span
        if isinstance(span, tuple | list) and len(span) == 2
        else (span[0], span[0])
        if isinstance(span, tuple | list) and span
        else (today, today)
    )
    return {
        "since": ui.start_of_local_day(first, tz).isoformat(),
        "until": ui.end_of_local_day(last, tz).isoformat(),
        "kinds": kinds,
        "person_id": person,
        "door": door.strip() or None,
        "first": first,
        "last": last,
    }


def summary(df: pd.DataFrame) -> None:
    totals = stats.outcome_totals(df)
    decided = totals["Granted"] + totals["Denied"]
    a, b, c, d = st.columns(4)
    a.metric("Entries", decided, border=True)
    b.metric("Granted", totals["Granted"], border=True)
    c.metric("Denied", totals["Denied"], border=True)
    d.metric(
        "Grant rate", f"{100 * totals['Granted'] / decided:.0f} %" if decided else "—", border=True
    )


def charts(df: pd.DataFrame, first: date, last: date) -> None:
    totals = stats.outcome_totals(df)
    hour, day, split = st.tabs(["By hour of day", "By day", "Grants vs denials"])
    with hour:
        _by_hour(df)
    with day:
        _by_day(df, first, last)
    with split:
        _grants_vs_denials(df, totals)


def _entries_axis() -> alt.Y:
    """Whole entries, stacked by outcome."""
    return alt.Y("entries:Q", title="Entries", stack=True, axis=alt.Axis(tickMinStep=1, format="d"))


def _by_hour(df: pd.DataFrame) -> None:
    st.altair_chart(
        alt.Chart(stats.per_hour(df))
        .mark_bar()
        .encode(
            x=alt.X("hour:O", title="Hour of day", axis=alt.Axis(labelAngle=0)),
            y=_entries_axis(),
            color=alt.Color("outcome:N", scale=COLOURS, title=None),
            tooltip=["hour", "outcome", "entries"],
        )
        .properties(height=260),
        width="stretch",
    )


def _by_day(df: pd.DataFrame, first: date, last: date) -> None:
    st.altair_chart(
        alt.Chart(stats.per_day(df, first, last))
        .mark_bar()
        .encode(
            x=alt.X(
                "yearmonthdate(day):O",
                title="Day",
                axis=alt.Axis(format="%a %d %b", labelAngle=0),
            ),
            y=_entries_axis(),
            color=alt.Color("outcome:N", scale=COLOURS, title=None),
            tooltip=[alt.Tooltip("day:T", format="%a %Y-%m-%d"), "outcome", "entries"],
        )
        .properties(height=260),
        width="stretch",
    )


def _grants_vs_denials(df: pd.DataFrame, totals: dict[str, int]) -> None:
    left, right = st.columns(2)
    pie = pd.DataFrame({"outcome": list(totals), "entries": list(totals.values())})
    left.altair_chart(
        alt.Chart(pie)
        .mark_arc(innerRadius=60)
        .encode(
            theta="entries:Q",
            color=alt.Color("outcome:N", scale=COLOURS, title=None),
            tooltip=["outcome", "entries"],
        )
        .properties(height=260),
        width="stretch",
    )
    reasons = stats.denial_reasons(df)
    if reasons.empty:
        right.caption("No denials in this period.")
        return
    reasons["reason"] = reasons["reason"].map(ui.reason_label)
    right.altair_chart(
        alt.Chart(reasons)
        .mark_bar(color="#d9534f")
        .encode(
            y=alt.Y("reason:N", sort="-x", title="Why denied"),
            x=alt.X("denials:Q", title="Denials", axis=alt.Axis(tickMinStep=1, format="d")),
            tooltip=["reason", "denials"],
        )
        .properties(height=260),
        width="stretch",
    )


#: Snapshots kept in the session as thumbnails (they never change once written).
THUMB_CACHE_MAX = 500


def _thumbnails(client, events: list[dict]) -> dict[str, str]:
    """A data: URL per event with a stored snapshot (the API needs a token: no plain links)."""
    cache: dict[str, str] = st.session_state.setdefault("snapshot_thumbs", {})
    for e in events:
        if not e.get("has_snapshot") or e["id"] in cache:
            continue
        try:
            data = client.snapshot(e["id"])
        except (ApiRefused, ApiUnavailable):
            continue  # the table still shows; the expander below says what is wrong
        if data:
            if len(cache) >= THUMB_CACHE_MAX:
                cache.clear()
            cache[e["id"]] = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    return {e["id"]: cache[e["id"]] for e in events if e["id"] in cache}


def table(f: dict) -> None:
    client = ui.api()
    offset = st.session_state.get("log_offset", 0)
    page = ui.fetch(
        client.events,
        since=f["since"],
        until=f["until"],
        kinds=f["kinds"],
        person_id=f["person_id"],
        door=f["door"],
        limit=ROWS_PER_PAGE,
        offset=offset,
    )
    if not page.items and offset == 0:
        st.info("No entries match these filters.")
        return
    _events_table(page.items, _thumbnails(client, page.items))
    prev, info, nxt = st.columns([1, 3, 1], vertical_alignment="center")
    if prev.button("← Newer", disabled=offset == 0, key="log_prev"):
        st.session_state["log_offset"] = max(0, offset - ROWS_PER_PAGE)
        st.rerun()
    info.caption(f"Entries {offset + 1}–{offset + len(page.items)}")
    if nxt.button("Older →", disabled=page.next_offset is None, key="log_next"):
        st.session_state["log_offset"] = page.next_offset
        st.rerun()
    _snapshots(client, page.items)


def _events_table(events: list[dict], thumbs: dict[str, str]) -> None:
    rows = pd.DataFrame(
        [
            {
                "Time": ui.local_time(e["ts"]),
                "Kind": ui.kind_label(e["kind"]),
                "Person": e.get("person_name") or ("unknown" if e["kind"] == DENIED else ""),
                "Distance": e.get("distance"),
                "Reason": ui.reason_label(e.get("reason")),
                "Door": e.get("door"),
                "Snapshot": thumbs.get(e["id"]),
            }
            for e in events
        ]
    )
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(rows), 560),
        column_config={
            "Distance": st.column_config.NumberColumn(
                format="%.3f", help="Face distance to the match: lower is closer"
            ),
            "Snapshot": st.column_config.ImageColumn(
                width="small", help="The face the kiosk saw (bigger below)"
            ),
        },
    )


def _snapshots(client, events: list[dict]) -> None:
    """The snapshots of this page's entries, one at a time, bigger than in the table."""
    with_snapshot = [e for e in events if e.get("has_snapshot")]
    if not with_snapshot:
        return
    with st.expander(
        f"Snapshots ({len(with_snapshot)} on this page)", icon=":material/photo_camera:"
    ):
        labels = {
            e["id"]: f"{ui.local_time(e['ts'])} · {ui.kind_label(e['kind'])} · "
            f"{e.get('person_name') or 'unknown'}"
            for e in with_snapshot
        }
        pick = st.selectbox("Entry", list(labels), format_func=labels.get, key="log_snap")
        image = ui.fetch(client.snapshot, pick)
        if image:
            st.image(image, width=320, caption=labels[pick])
        else:
            st.caption("This snapshot is no longer stored.")


def page() -> None:
    st.title(":material/list_alt: Entry log")
    f = filters()
    client = ui.api()
    csv = ui.fetch(
        client.events_csv,
        since=f["since"],
        until=f["until"],
        kinds=f["kinds"],
        person_id=f["person_id"],
        door=f["door"],
    )
    df = stats.events_frame(csv, ui.door_tz())
    head, button = st.columns([4, 1], vertical_alignment="bottom")
    noun = "entry" if len(df) == 1 else "entries"
    head.caption(
        f"{len(df)} {noun} from {f['first']:%Y-%m-%d} to {f['last']:%Y-%m-%d}, "
        f"times in {ui.door_tz().key}."
    )
    button.download_button(
        "Download CSV",
        data=csv,
        mime="text/csv",
        icon=":material/download:",
        file_name=f"entries_{f['first']:%Y%m%d}-{f['last']:%Y%m%d}.csv",
        key="log_csv",
        width="stretch",
    )
    summary(df)
    st.subheader("Entries")
    table(f)
    st.subheader("Trends")
    charts(df, f["first"], f["last"])


page()
