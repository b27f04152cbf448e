"""The console in streamlit's AppTest, against a real admin API with the real face models."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from appliance import store
from tests.ui.conftest import APP, PAGES, ConsoleApi, free_port, open_page, sign_in


def texts(at: AppTest) -> str:
    """Everything the page says (markdown, captions, alerts, titles), as one string."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "error",
        "warning",
        "info",
        "success",
    ):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


def labels(at: AppTest) -> set[str]:
    return {b.label for b in at.button}


def test_a_bad_token_is_refused_and_stays_on_sign_in(ui_env: ConsoleApi) -> None:
    at = sign_in("fg_not-a-real-token")
    assert "not accepted" in texts(at)
    assert "token" not in at.session_state
    assert [t.label for t in at.text_input] == ["API token"]


def test_admin_signs_in_and_every_page_renders(ui_env: ConsoleApi, kit_entered: dict) -> None:
    at = sign_in(ui_env.admin_token)
    assert at.session_state["role"] == "admin"
    assert "Signed in · **ui-admin** (admin)" in texts(at)  # the token's name and role
    door = texts(at)
    assert "Front door" in door and "Kit Harington" in door  # last decision, by name
    assert {"Unlock now…"} <= labels(at)
    open_page(at, "People")
    assert "Kit Harington" in at.dataframe[0].value["Name"].tolist()
    assert "Add a person" in [e.label for e in at.expander]
    open_page(at, "Entry log")
    log = at.dataframe[0].value
    row = log[log["Person"] == "Kit Harington"].iloc[0]
    assert row["Kind"] == "Granted" and row["Distance"] < 0.55
    assert row["Snapshot"].startswith("data:image/jpeg;base64,")  # shown as an image
    csv = at.get("download_button")[0]
    assert csv.proto.label == "Download CSV"
    granted = int(next(m.value for m in at.metric if m.label == "Granted"))
    assert granted == (log["Kind"] == "Granted").sum() >= 1
    assert at.image, "the event's stored snapshot is shown"
    open_page(at, "Schedules")
    assert "Weekly windows" in texts(at)
    open_page(at, "Sync")
    assert "has not run on this door" in texts(at)


def test_adding_a_person_with_a_fixture_photo_enrols_a_face(
    ui_env: ConsoleApi, people_dir: Path
) -> None:
    at = open_page(sign_in(ui_env.admin_token), "People")
    form = at.get("form")[0] if at.get("form") else None
    assert form is not None
    name_input = next(t for t in at.text_input if t.label == "Name")
    name_input.input("Joe Biden")
    photo = sorted((people_dir / "joe_biden").iterdir())[0]
    uploader = at.get("file_uploader")[0]
    uploader.set_value([(photo.name, photo.read_bytes(), "image/jpeg")])
    button(at, "Add person").click()
    at.run()
    assert not at.exception, at.exception
    said = texts(at)
    assert f"**{photo.name}** — accepted" in said and "1 face enrolled" in said
    person = ui_env.person_named("Joe Biden")
    assert person is not None and person["face_count"] == 1


def test_adding_a_person_whose_photos_are_all_refused_adds_nobody(
    ui_env: ConsoleApi, probes_dir: Path
) -> None:
    at = open_page(sign_in(ui_env.admin_token), "People")
    next(t for t in at.text_input if t.label == "Name").input("Group Photo")
    two = probes_dir / "two_faces__two_people.jpg"
    at.get("file_uploader")[0].set_value([(two.name, two.read_bytes(), "image/jpeg")])
    button(at, "Add person").click()
    at.run()
    assert not at.exception, at.exception
    said = texts(at)
    assert "**Group Photo** was not added: no photo was accepted" in said
    assert f"**{two.name}** — refused: more than one face found" in said
    assert "**Group Photo** added." not in said
    assert ui_env.person_named("Group Photo") is None  # the CLI's rule: nobody faceless


def test_a_refused_photo_shows_its_reason(
    ui_env: ConsoleApi, kit_entered: dict, probes_dir: Path
) -> None:
    at = open_page(sign_in(ui_env.admin_token), "People")
    pick = next(s for s in at.selectbox if s.label == "Person")
    pick.set_value(kit_entered["id"]).run()
    uploader = next(u for u in at.get("file_uploader") if u.label.startswith("Photos ("))
    two = probes_dir / "two_faces__two_people.jpg"
    uploader.set_value([(two.name, two.read_bytes(), "image/jpeg")])
    at.run()
    button(at, "Enrol photos").click()
    at.run()
    said = texts(at)
    assert f"**{two.name}** — refused: more than one face found" in said
    assert "No face enrolled" in said
    assert ui_env.get(f"/people/{kit_entered['id']}")["face_count"] == 2  # unchanged


def test_bulk_zip_enrols_one_person_per_folder(ui_env: ConsoleApi, people_dir: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted((people_dir / "rose_leslie").iterdir()):
            zf.writestr(f"staff/rose_leslie/{p.name}", p.read_bytes())
        zf.writestr("staff/rose_leslie/notes.txt", b"not a photo")
    at = open_page(sign_in(ui_env.admin_token), "People")
    uploader = next(u for u in at.get("file_uploader") if u.label == "Zip of photo folders")
    uploader.set_value(("staff.zip", buf.getvalue(), "application/zip"))
    at.run()
    button(at, "Enrol everyone in the zip").click()
    at.run()
    assert not at.exception, at.exception
    assert "1 of 1 people enrolled, 2 faces in all" in texts(at)
    report = at.dataframe[0].value
    assert report.iloc[0]["Person"] == "Rose Leslie" and report.iloc[0]["Result"] == "created"
    person = ui_env.person_named("Rose Leslie")
    assert person["external_id"] == "rose_leslie" and person["face_count"] == 2
    # the same zip again: nothing new, nobody twice
    button(at, "Enrol everyone in the zip").click()
    at.run()
    assert not at.exception, at.exception
    report = at.dataframe[0].value
    assert report.iloc[0]["Result"] == "already enrolled"
    assert report.iloc[0]["Faces enrolled"] == 0
    again = ui_env.get("/people?search=Rose Leslie")["items"]
    assert len(again) == 1 and again[0]["face_count"] == 2


def test_deleting_a_person_says_the_faces_go_too(ui_env: ConsoleApi, people_dir: Path) -> None:
    http = ui_env.http()
    base = f"{ui_env.url}/api/v1"
    person = http.post(f"{base}/people", json={"name": "Lin Delete"}, timeout=30).json()
    photo = sorted((people_dir / "lin_manuel_miranda").iterdir())[0]
    resp = http.post(
        f"{base}/people/{person['id']}/faces",
        files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))],
        timeout=120,
    )
    assert resp.status_code == 201, resp.text
    at = open_page(sign_in(ui_env.admin_token), "People")
    next(s for s in at.selectbox if s.label == "Person").set_value(person["id"]).run()
    assert "also deletes their **1 enrolled face(s)**" in texts(at)
    delete = button(at, "Delete person and faces")
    assert delete.disabled, "deleting needs the confirmation first"
    next(c for c in at.checkbox if c.label.startswith("Yes, delete")).check().run()
    button(at, "Delete person and faces").click()
    at.run()
    assert "Lin Delete and 1 face(s) deleted" in texts(at)
    assert ui_env.person_named("Lin Delete") is None


@pytest.fixture
def fresh_status(ui_env: ConsoleApi) -> Iterator[None]:
    """A status row as a running appliance writes it (fresh), put back as it was afterwards."""
    db = store.open_db(ui_env.settings.db_path)
    saved = store.get_status(db, "appliance")
    store.put_status(
        db,
        "appliance",
        {
            "running": True,
            "locked": True,
            "camera_ok": True,
            "gallery_persons": 0,
            "simulated": True,
        },
    )
    try:
        yield
    finally:
        if saved:
            store.put_status(db, "appliance", {k: v for k, v in saved.items() if k != "updated_at"})
        db.conn.close()


def test_unlock_asks_first_and_says_when_the_appliance_does_not_answer(
    ui_env: ConsoleApi, kit_entered: dict, fresh_status: None
) -> None:
    at = sign_in(ui_env.admin_token)
    said = texts(at)
    # the start-up warnings that matter are repeated on the Door page
    assert "Nobody is enrolled" in said and "Simulated door" in said
    # the frame the appliance left (kit_entered), captioned with its own time while it "runs"
    captions = [img.caption for el in at.image for img in el.proto.imgs]
    assert any(c.startswith("Live view · taken ") for c in captions), captions
    button(at, "Unlock now…").click()
    at.run()
    assert "Unlock the door now?" in texts(at)
    button(at, "Yes, unlock").click()
    at.run(timeout=30)
    assert "did not answer" in texts(at)  # the status row is there, no appliance answers


def test_no_unlock_while_the_kiosk_is_not_running(ui_env: ConsoleApi, kit_entered: dict) -> None:
    at = sign_in(ui_env.admin_token)  # the appliance ran (for Kit) and has stopped since
    said = texts(at)
    assert "Appliance **offline**" in said
    assert button(at, "Unlock now…").disabled
    assert "unavailable while the kiosk is not running" in said
    assert "Locked" not in [m.value for m in at.metric]  # a stopped kiosk's lock is not known


def test_a_schedule_is_created_from_the_table(ui_env: ConsoleApi) -> None:
    at = open_page(sign_in(ui_env.admin_token), "Schedules")
    at.selectbox(key="sched_select").set_value("__new__").run()
    next(t for t in at.text_input if t.label == "Name").input("Cleaners")
    button(at, "Create schedule").click()
    at.run()
    assert "Saved “Cleaners”: Mon–Fri 08:00–18:00" in texts(at)
    assert at.selectbox(key="sched_select").value != "__new__"  # the saved one is shown
    saved = [s for s in ui_env.get("/schedules")["items"] if s["name"] == "Cleaners"]
    assert saved and saved[0]["windows"] == [
        {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}
    ]


@pytest.mark.parametrize("page", list(PAGES))
def test_a_viewer_sees_no_admin_controls(ui_env: ConsoleApi, kit_entered: dict, page: str) -> None:
    at = open_page(sign_in(ui_env.viewer_token), page)
    assert at.session_state["role"] == "viewer"
    allowed = {"Sign out", "← Previous", "Next →", "← Newer", "Older →"}
    assert labels(at) <= allowed, labels(at) - allowed
    assert not at.get("file_uploader") and not at.get("camera_input")
    assert not at.get("form") and not at.get("arrow_data_frame_editor")
    assert not at.get("tabs") or page == "Entry log"  # the chart tabs only
    if page == "People":
        assert "Kit Harington" in at.dataframe[0].value["Name"].tolist()
        assert "Person details" in texts(at)  # the read-only details are there


def test_api_down_says_so_and_recovers(ui_env: ConsoleApi, monkeypatch: pytest.MonkeyPatch) -> None:
    at = sign_in(ui_env.admin_token)
    monkeypatch.setenv("FACEGATE_UI_API_URL", f"http://127.0.0.1:{free_port()}")
    for page in PAGES:
        open_page(at, page)
        assert "The admin API is not reachable" in texts(at), page
        assert at.title, f"{page}: the page keeps its title"
    monkeypatch.setenv("FACEGATE_UI_API_URL", ui_env.url)
    open_page(at, "Sync")
    assert "not reachable" not in texts(at)
    assert at.session_state["token"] == ui_env.admin_token  # still signed in


def test_sign_in_when_the_api_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_UI_API_URL", f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input[0].input("fg_anything")
    at.button[0].click()
    at.run()
    assert "The admin API is not reachable" in texts(at)
    assert "token" not in at.session_state


def test_a_face_is_enrolled_from_the_browser_camera(ui_env: ConsoleApi, people_dir: Path) -> None:
    person = (
        ui_env.http()
        .post(f"{ui_env.url}/api/v1/people", json={"name": "Camera Test"}, timeout=30)
        .json()
    )
    at = open_page(sign_in(ui_env.admin_token), "People")
    next(s for s in at.selectbox if s.label == "Person").set_value(person["id"]).run()
    at.segmented_control(key=f"src_{person['id']}").set_value("Camera").run()
    shot = sorted((people_dir / "barack_obama").iterdir())[0]
    at.camera_input[0].set_value(("shot.jpg", shot.read_bytes(), "image/jpeg"))
    at.run()
    button(at, "Enrol photos").click()
    at.run()
    assert "— accepted" in texts(at) and "1 face enrolled" in texts(at)
    assert ui_env.get(f"/people/{person['id']}")["face_count"] == 1
