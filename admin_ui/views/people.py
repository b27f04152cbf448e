"""People: search and page through them; add, edit, enrol faces, delete; bulk enrolment."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from admin_ui import bulk, ui
from admin_ui.client import AdminApi, ApiRefused, ApiUnavailable, EnrolOutcome
from admin_ui.enrolment import DUPLICATE, PHOTO_SUFFIXES, enrol_photos, keep_new_person

PAGE_SIZES = (25, 50, 100)
PHOTO_TYPES = [s.removeprefix(".") for s in PHOTO_SUFFIXES]
NO_SCHEDULE = "Any time (no schedule)"


def _max_request_bytes() -> int:
    return int(ui.settings().api_max_upload_mb * 1024 * 1024)


def _upload_mb() -> int:
    return max(1, math.ceil(ui.settings().api_max_upload_mb))


def _flash(key: str, kind: str, message: str) -> None:
    st.session_state[f"flash_{key}"] = (kind, message)


def _show_flash(key: str) -> None:
    flash = st.session_state.pop(f"flash_{key}", None)
    if flash:
        getattr(st, flash[0])(flash[1])


# --- dates: the API stores UTC instants; people think in local days ---------------------------


def _local_date(text: str | None, *, until: bool = False) -> date | None:
    ts = ui.parse_ts(text)
    if ts is None:
        return None
    local = ts.astimezone(ui.door_tz())
    # valid_until is exclusive (midnight after the last day): show the last valid day
    return (local - timedelta(microseconds=1)).date() if until else local.date()


def _instant(day: date | None, *, until: bool = False) -> str | None:
    if day is None:
        return None
    tz = ui.door_tz()
    ts = ui.end_of_local_day(day, tz) if until else ui.start_of_local_day(day, tz)
    return ts.isoformat()


def _validity(person: dict[str, Any]) -> str:
    start = _local_date(person.get("valid_from"))
    end = _local_date(person.get("valid_until"), until=True)
    if not start and not end:
        return "always"
    if start and end:
        return f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"
    return f"from {start:%Y-%m-%d}" if start else f"until {end:%Y-%m-%d}"


# --- per-photo results ------------------------------------------------------------------------


def show_enrol_results(outcome: EnrolOutcome) -> None:
    """One line per photo: accepted, already enrolled (skipped), or refused and why."""
    if outcome.enrolled:
        st.success(f"{outcome.enrolled} face{'s' if outcome.enrolled != 1 else ''} enrolled.")
    elif outcome.error:
        st.error(f"No face enrolled: {outcome.error}.")
    elif any(r.code == DUPLICATE for r in outcome.results):
        st.info("Nothing new: the person already has these photos.")
    for r in outcome.results:
        if r.accepted:
            st.markdown(f":green[:material/check_circle:] **{r.source}** — accepted")
        elif r.code == DUPLICATE:
            st.markdown(f":grey[:material/content_copy:] **{r.source}** — skipped: {r.message}")
        else:
            st.markdown(f":red[:material/cancel:] **{r.source}** — refused: {r.message}")


def _photos_from(uploads: list[Any] | None, camera: Any | None) -> list[tuple[str, bytes]]:
    photos = [(f.name, f.getvalue()) for f in uploads or []]
    if camera is not None:
        photos.append((f"camera-{datetime.now():%H%M%S}.jpg", camera.getvalue()))
    return photos


def enrol_uploads(
    client: AdminApi, person_id: str, photos: list[tuple[str, bytes]]
) -> EnrolOutcome | None:
    """Send the photos; None (after saying why) when the API is unreachable."""
    try:
        with st.spinner(f"Checking {len(photos)} photo(s) for one clear face…"):
            return enrol_photos(client, person_id, photos, _max_request_bytes())
    except (ApiRefused, ApiUnavailable) as exc:
        st.error(ui.action_error(exc))
        return None


# --- add a person -----------------------------------------------------------------------------


def _schedule_picker(schedules: list[dict[str, Any]], current: str | None, key: str) -> str | None:
    options = [None, *[s["id"] for s in schedules]]
    names = {s["id"]: s["name"] for s in schedules}
    index = options.index(current) if current in options else 0
    return st.selectbox(
        "Schedule",
        options,
        index=index,
        key=key,
        format_func=lambda sid: names.get(sid, NO_SCHEDULE) if sid else NO_SCHEDULE,
    )


def add_person(client: AdminApi, schedules: list[dict[str, Any]]) -> None:
    with st.expander(
        "Add a person",
        icon=":material/person_add:",
        expanded=bool(st.session_state.get("add_results")),
    ):
        with st.form("add_person", clear_on_submit=True):
            a, b = st.columns(2)
            name = a.text_input("Name", max_chars=200)
            external_id = b.text_input("Employee or badge number (optional)", max_chars=200)
            c, d, e = st.columns(3)
            valid_from = c.date_input("Valid from (optional)", value=None, format="YYYY-MM-DD")
            valid_until = d.date_input("Valid until (optional)", value=None, format="YYYY-MM-DD")
            with e:
                schedule_id = _schedule_picker(schedules, None, "add_schedule")
            uploads = st.file_uploader(
                "Photos of the face (one face per photo)",
                type=PHOTO_TYPES,
                accept_multiple_files=True,
                key="add_photos",
                max_upload_size=_upload_mb(),
            )
            submitted = st.form_submit_button(
                "Add person", type="primary", icon=":material/person_add:"
            )
        if submitted:
            if not name.strip():
                st.error("A name is needed.")
            else:
                _create(
                    client,
                    name,
                    external_id,
                    valid_from,
                    valid_until,
                    schedule_id,
                    _photos_from(uploads, None),
                )
        results = st.session_state.get("add_results")
        if results:
            person_name, outcome, kept = results
            if not kept:
                st.error(
                    f"**{person_name}** was not added: no photo was accepted. Try clearer "
                    "photos of the face, one face per photo.",
                    icon=":material/person_off:",
                )
            elif outcome is None:
                st.warning(
                    f"**{person_name}** added without a face: the door will not "
                    "recognise them until photos are enrolled.",
                    icon=":material/person_add:",
                )
            else:
                st.success(f"**{person_name}** added.", icon=":material/person_add:")
            if outcome is not None:
                show_enrol_results(outcome)


def _create(
    client: AdminApi,
    name: str,
    external_id: str,
    valid_from: date | None,
    valid_until: date | None,
    schedule_id: str | None,
    photos: list[tuple[str, bytes]],
) -> None:
    try:
        person = client.create_person(
            name=name.strip(),
            external_id=external_id.strip() or None,
            valid_from=_instant(valid_from),
            valid_until=_instant(valid_until, until=True),
            schedule_id=schedule_id,
        )
    except (ApiRefused, ApiUnavailable) as exc:
        st.error(ui.action_error(exc))
        return
    outcome = enrol_uploads(client, person["id"], photos) if photos else None
    kept = outcome is None or keep_new_person(True, outcome.results)
    if not kept:  # the same rule as the CLI and bulk: nobody is left without a face
        try:
            client.delete_person(person["id"])
        except (ApiRefused, ApiUnavailable) as exc:
            st.error(ui.action_error(exc))
            return
    st.session_state["add_results"] = (person["name"], outcome, kept)
    if kept:
        st.session_state["person_pick"] = person["id"]
    st.rerun()


# --- bulk enrolment ---------------------------------------------------------------------------


def bulk_enrol(client: AdminApi) -> None:
    limit = _max_request_bytes()
    zip_limit = 10 * limit
    with st.expander("Bulk enrolment from a zip", icon=":material/folder_zip:"):
        st.caption(
            f"A zip with one folder per person, named after them (`alice_smith/1.jpg`, "
            f"`bob_jones/1.jpg`, …). The folder name becomes the employee or badge "
            f"number, so enrolling the same zip again adds only new photos, never people twice. "
            f"At most {zip_limit / 1e6:.0f} MB."
        )
        upload = st.file_uploader(
            "Zip of photo folders",
            type=["zip"],
            key="bulk_zip",
            max_upload_size=max(1, zip_limit // 1_000_000),
        )
        if upload is not None and st.button(
            "Enrol everyone in the zip", type="primary", key="bulk_go"
        ):
            run_bulk(client, upload.getvalue(), limit, zip_limit)
        report = st.session_state.get("bulk_report")
        if report:
            show_bulk_report(*report)


def run_bulk(client: AdminApi, data: bytes, request_limit: int, zip_limit: int) -> None:
    try:
        bundle = bulk.read_bundle(
            data,
            max_zip_bytes=zip_limit,
            max_photo_bytes=request_limit,
            max_total_bytes=zip_limit * 3 // 2,
        )
    except bulk.BundleRefused as exc:
        st.error(f"This zip cannot be used: {exc}.")
        return
    bar = st.progress(0.0, text=f"{len(bundle.people)} people, {bundle.photo_count} photos")

    def progress(done: int, total: int, name: str) -> None:
        text = f"Enrolling {name} ({done + 1} of {total})…" if name else "Done."
        bar.progress(done / total if total else 1.0, text=text)

    try:
        rows = bulk.enrol_bundle(client, bundle, request_limit, progress)
    except ApiUnavailable:
        st.error(
            "The admin API went away during the bulk enrolment; the people listed "
            "before this point were enrolled. Enrol the zip again when it is back."
        )
        return
    st.session_state["bulk_report"] = (rows, bundle.skipped)


def show_bulk_report(rows: list[bulk.BulkRow], skipped: list[str]) -> None:
    table = pd.DataFrame(
        [
            {
                "Person": r.name,
                "Employee or badge number": r.external_id,
                "Result": r.status,
                "Faces enrolled": r.accepted,
                "Refused photos": "; ".join(f"{p.source}: {p.message}" for p in r.refused)
                or r.error,
            }
            for r in rows
        ]
    )
    added = sum(1 for r in rows if r.status in ("created", "added", "already enrolled"))
    st.success(
        f"{added} of {len(rows)} people enrolled, {sum(r.accepted for r in rows)} faces in all."
    )
    st.dataframe(table, hide_index=True, width="stretch")
    if skipped:
        with st.expander(f"{len(skipped)} file(s) in the zip were skipped"):
            st.write("\n".join(f"- {s}" for s in skipped))


# --- one person -------------------------------------------------------------------------------


def faces_tab(client: AdminApi, person: dict[str, Any]) -> None:
    faces = ui.fetch(client.faces, person["id"])
    if not faces:
        st.info("No face enrolled: the door cannot recognise this person yet.")
    else:
        st.caption(
            f"{len(faces)} enrolled face(s). Photos are not kept unless the door is "
            "set to store them."
        )
    for face in faces:
        cols = st.columns([3, 2, 2, 1] if ui.is_admin() else [3, 2, 2])
        cols[0].markdown(f"`{face['id'][:8]}`")
        quality = face.get("quality")
        # the API's "quality" is the face's sharpness (variance of the Laplacian)
        cols[1].markdown(f"sharpness {quality:.0f}" if quality is not None else "sharpness —")
        cols[2].markdown(f"added {ui.local_time(face.get('created_at'), '%Y-%m-%d %H:%M')}")
        if ui.is_admin() and cols[3].button(
            "Delete", key=f"del_face_{face['id']}", icon=":material/delete:"
        ):
            try:
                client.delete_face(person["id"], face["id"])
                _flash("person", "success", "Face deleted.")
            except (ApiRefused, ApiUnavailable) as exc:
                _flash("person", "error", ui.action_error(exc))
            st.rerun()


def add_photos_tab(client: AdminApi, person: dict[str, Any]) -> None:
    key = person["id"]
    source = st.segmented_control(
        "Source", ["Upload photos", "Camera"], default="Upload photos", key=f"src_{key}"
    )
    uploads, camera = None, None
    if source == "Camera":
        camera = st.camera_input("Take a photo of the face", key=f"cam_{key}")
    else:
        uploads = st.file_uploader(
            "Photos (one face per photo)",
            type=PHOTO_TYPES,
            accept_multiple_files=True,
            key=f"up_{key}",
            max_upload_size=_upload_mb(),
        )
    photos = _photos_from(uploads, camera)
    if st.button(
        "Enrol photos",
        type="primary",
        disabled=not photos,
        key=f"enrol_{key}",
        icon=":material/face:",
    ):
        outcome = enrol_uploads(client, key, photos)
        if outcome is not None:
            st.session_state[f"enrol_results_{key}"] = outcome
    outcome = st.session_state.get(f"enrol_results_{key}")
    if outcome is not None:
        show_enrol_results(outcome)


def edit_tab(client: AdminApi, person: dict[str, Any], schedules: list[dict[str, Any]]) -> None:
    with st.form(f"edit_{person['id']}"):
        a, b = st.columns(2)
        name = a.text_input("Name", value=person["name"], max_chars=200)
        external_id = b.text_input(
            "Employee or badge number", value=person.get("external_id") or "", max_chars=200
        )
        c, d, e = st.columns(3)
        valid_from = c.date_input(
            "Valid from", value=_local_date(person.get("valid_from")), format="YYYY-MM-DD"
        )
        valid_until = d.date_input(
            "Valid until (last day)",
            value=_local_date(person.get("valid_until"), until=True),
            format="YYYY-MM-DD",
        )
        with e:
            schedule_id = _schedule_picker(
                schedules, person.get("schedule_id"), f"sched_{person['id']}"
            )
        active = st.toggle("Active (may enter)", value=bool(person.get("active")))
        notes = st.text_area("Notes", value=person.get("notes") or "", max_chars=4000)
        saved = st.form_submit_button("Save changes", type="primary", icon=":material/save:")
    if saved:
        wanted = {
            "name": name.strip(),
            "external_id": external_id.strip() or None,
            "valid_from": _instant(valid_from),
            "valid_until": _instant(valid_until, until=True),
            "schedule_id": schedule_id,
            "active": active,
            "notes": notes.strip() or None,
        }
        changes = {k: v for k, v in wanted.items() if not _same(k, v, person.get(k))}
        if not changes:
            st.info("Nothing changed.")
            return
        try:
            client.update_person(person["id"], **changes)
        except (ApiRefused, ApiUnavailable) as exc:
            st.error(ui.action_error(exc))
            return
        _flash("person", "success", f"Saved {', '.join(k.replace('_', ' ') for k in changes)}.")
        st.rerun()


def _same(key: str, new: Any, old: Any) -> bool:
    if key in ("valid_from", "valid_until"):
        a, b = ui.parse_ts(new), ui.parse_ts(old)
        return a == b
    if key == "active":
        return bool(new) == bool(old)
    return (new or None) == (old or None)


def delete_tab(client: AdminApi, person: dict[str, Any]) -> None:
    faces = person.get("face_count") or 0
    st.warning(
        f"Deleting **{person['name']}** also deletes their **{faces} enrolled face(s)** — the "
        "face data is erased, not hidden — and the door stops recognising them at once. "
        "Their past entries stay in the log. This cannot be undone.",
        icon=":material/warning:",
    )
    sure = st.checkbox(f"Yes, delete {person['name']} and their faces", key=f"sure_{person['id']}")
    if st.button(
        "Delete person and faces",
        type="primary",
        disabled=not sure,
        key=f"delete_{person['id']}",
        icon=":material/delete_forever:",
    ):
        try:
            deleted = client.delete_person(person["id"])
        except (ApiRefused, ApiUnavailable) as exc:
            st.error(ui.action_error(exc))
            return
        st.session_state.pop("person_pick", None)
        _flash("people", "success", f"{person['name']} and {deleted} face(s) deleted.")
        st.rerun()


def person_panel(client: AdminApi, person: dict[str, Any], schedules: list[dict[str, Any]]) -> None:
    names = {s["id"]: s["name"] for s in schedules}
    with st.container(border=True):
        st.subheader(person["name"])
        badges = [
            ":green-badge[active]" if person.get("active") else ":red-badge[inactive]",
            f":blue-badge[{person.get('face_count') or 0} face(s)]",
            f":gray-badge[valid {_validity(person)}]",
            f":violet-badge[{names.get(person.get('schedule_id'), NO_SCHEDULE)}]",
        ]
        if person.get("external_id"):
            badges.insert(0, f":gray-badge[Employee or badge number {person['external_id']}]")
        st.markdown(" ".join(badges))
        if person.get("notes"):
            st.caption(person["notes"])
        _show_flash("person")
        if ui.is_admin():
            faces, add, edit, delete = st.tabs(["Faces", "Add photos", "Edit", "Delete"])
            with faces:
                faces_tab(client, person)
            with add:
                add_photos_tab(client, person)
            with edit:
                edit_tab(client, person, schedules)
            with delete:
                delete_tab(client, person)
        else:
            faces_tab(client, person)


# --- the page ---------------------------------------------------------------------------------


def _reset_paging() -> None:
    st.session_state["people_offset"] = 0


def page() -> None:
    client = ui.api()
    st.title(":material/group: People")
    _show_flash("people")
    schedules = ui.fetch(client.schedules)
    search, active, size = _filters()
    offset = st.session_state.get("people_offset", 0)
    result = ui.fetch(
        client.people, search=search.strip() or None, active=active, limit=size, offset=offset
    )
    if ui.is_admin():
        add_person(client, schedules)
        bulk_enrol(client)
    if not result.items:
        st.info(
            "No people match."
            if search or active is not None
            else "Nobody is enrolled yet." + (" Add a person above." if ui.is_admin() else "")
        )
        return
    _people_table(result.items, {s["id"]: s["name"] for s in schedules})
    _pager(result.total, size, offset)
    _pick_person(client, result.items, schedules)


def _filters() -> tuple[str, bool | None, int]:
    """The search box, the active filter and the page size (a change goes back to page 1)."""
    a, b, c = st.columns([3, 2, 1], vertical_alignment="bottom")
    search = a.text_input(
        "Search by name or id",
        key="people_search",
        on_change=_reset_paging,
        placeholder="e.g. Smith or 10234",
    )
    which = b.segmented_control(
        "Show",
        ["All", "Active", "Inactive"],
        default="All",
        key="people_active",
        on_change=_reset_paging,
    )
    size = c.selectbox("Per page", PAGE_SIZES, key="people_size", on_change=_reset_paging)
    return search, {"Active": True, "Inactive": False}.get(which or "All"), size


def _people_table(items: list[dict[str, Any]], schedule_names: dict[str, str]) -> None:
    table = pd.DataFrame(
        [
            {
                "Name": p["name"],
                "Employee or badge number": p.get("external_id") or "",
                "Active": bool(p.get("active")),
                "Faces": p.get("face_count") or 0,
                "Valid": _validity(p),
                "Schedule": schedule_names.get(p.get("schedule_id"), "any time"),
            }
            for p in items
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "Active": st.column_config.CheckboxColumn(width="small"),
            "Faces": st.column_config.NumberColumn(width="small"),
        },
    )


def _pager(total: int, size: int, offset: int) -> None:
    pages = max(1, -(-total // size))
    current = offset // size + 1
    prev, info, nxt = st.columns([1, 3, 1], vertical_alignment="center")
    if prev.button("← Previous", disabled=current <= 1, key="people_prev"):
        st.session_state["people_offset"] = max(0, offset - size)
        st.rerun()
    noun = "person" if total == 1 else "people"
    info.caption(f"Page {current} of {pages} · {total} {noun}")
    if nxt.button("Next →", disabled=current >= pages, key="people_next"):
        st.session_state["people_offset"] = offset + size
        st.rerun()


def _pick_person(
    client: AdminApi, items: list[dict[str, Any]], schedules: list[dict[str, Any]]
) -> None:
    """The person chosen from this page, in the panel below the table."""
    st.subheader("Manage a person" if ui.is_admin() else "Person details")
    ids = [p["id"] for p in items]
    by_id = {p["id"]: p for p in items}
    picked = st.session_state.get("person_pick")
    pick = st.selectbox(
        "Person",
        ids,
        index=ids.index(picked) if picked in ids else 0,
        format_func=lambda pid: (
            by_id[pid]["name"]
            + (f" ({by_id[pid]['external_id']})" if by_id[pid].get("external_id") else "")
        ),
    )
    st.session_state["person_pick"] = pick
    person = ui.fetch(client.person, pick)
    person_panel(client, person, schedules)


page()
