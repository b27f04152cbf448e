"""The console in a real browser (Debian's headless Chromium via Playwright), against the running
console and API: sign in, every page, enrol a person from a fixture photo, and see their entry in
the log after the real appliance saw them. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.conftest import ARTIFACTS, Console, run_appliance

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000


def sign_in(browser, console: Console, token: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(console.url)
    page.get_by_label("API token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in").wait_for()
    return page


def go(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    page.get_by_role("heading", name=name).first.wait_for()


def settle(page) -> None:
    """Let the page's data and charts arrive before a screenshot."""
    page.wait_for_load_state("networkidle")
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden")
    page.wait_for_timeout(800)


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"console_{name}.png"
    settle(page)
    page.screenshot(path=path, full_page=True)
    return path


def test_admin_enrols_a_person_and_sees_their_entry(
    browser, console: Console, people_dir: Path, probes_dir: Path, tmp_path: Path
) -> None:
    page = sign_in(browser, console, console.api.admin_token)
    page.get_by_role("heading", name="Front door").wait_for()
    shot(page, "door_before")

    go(page, "People")
    page.get_by_text("Add a person", exact=True).click()
    form = page.get_by_test_id("stExpander").filter(
        has=page.get_by_text("Add a person", exact=True)
    )
    form.get_by_label("Name", exact=True).fill("Alex Lacamoire")
    form.get_by_label("Employee or badge number (optional)").fill("E-1042")
    photos = sorted((people_dir / "alex_lacamoire").iterdir())
    form.locator("input[type=file]").set_input_files([str(p) for p in photos])
    for p in photos:
        form.get_by_text(p.name).wait_for()  # uploaded to the console before we submit
    form.get_by_role("button", name="Add person").click()
    page.get_by_text(f"{len(photos)} faces enrolled.").wait_for(timeout=120_000)
    for p in photos:
        assert page.get_by_text(f"{p.name} — accepted").is_visible()
    person = console.api.person_named("Alex Lacamoire")
    assert person is not None and person["face_count"] == len(photos)
    shot(page, "people")

    run_appliance(
        console.api.settings,
        probes_dir / "alex_lacamoire__1.jpg",
        tmp_path,
        copies=12,
        flicker=True,
    )

    go(page, "Entry log")
    # the table is drawn on a canvas; its cells are also in the DOM, for screen readers
    cell = page.get_by_test_id("stDataFrame").locator("td", has_text="Alex Lacamoire").first
    cell.wait_for(state="attached")
    row = cell.locator("xpath=..")
    assert "Granted" in row.text_content()
    page.get_by_text("Snapshots (").click()  # the face crop the appliance stored
    page.get_by_test_id("stExpander").get_by_test_id("stImage").first.wait_for()
    shot(page, "entry_log")

    go(page, "Door")
    page.get_by_text("Last decision:").wait_for()
    assert "Alex Lacamoire" in page.get_by_text("Last decision:").inner_text()
    assert (console.api.settings.run_dir / "latest.jpg").exists()
    page.get_by_test_id("stImage").first.wait_for()  # the appliance's annotated frame
    # the appliance has stopped: its last frame is shown as such, with its own time, and
    # nothing offers an unlock that no kiosk would carry out
    page.get_by_text("Last frame, kiosk offline").wait_for()
    assert page.get_by_role("button", name="Unlock now…").is_disabled()
    assert page.get_by_text("Live view ·").count() == 0
    shot(page, "door")

    go(page, "Schedules")
    if page.get_by_role("button", name="Create schedule").count() == 0:
        page.locator(".st-key-sched_select").click()
        page.get_by_role("option", name="+ New schedule").click()
        page.get_by_role("button", name="Create schedule").wait_for()
    page.get_by_label("Name", exact=True).fill("Office hours")
    page.get_by_role("button", name="Create schedule").click()
    page.get_by_text("Saved “Office hours”").wait_for()
    shot(page, "schedules")

    go(page, "Sync")
    page.get_by_role("heading", name="Heartbeats").wait_for()
    shot(page, "sync")
    page.close()


def test_viewer_sees_pages_read_only(browser, console: Console) -> None:
    page = sign_in(browser, console, console.api.viewer_token)
    assert page.get_by_text("read-only").is_visible()
    assert page.get_by_role("button", name="Unlock now…").count() == 0
    go(page, "People")
    assert page.get_by_text("Add a person", exact=True).count() == 0
    assert page.locator("input[type=file]").count() == 0
    shot(page, "people_viewer")
    page.close()
