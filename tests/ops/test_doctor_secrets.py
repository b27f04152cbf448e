"""``facegate doctor`` output is pasted into support tickets: it never shows a camera password."""

from __future__ import annotations

from appliance import doctor
from tests.api.conftest import make_settings

PASSWORD = "hunter2-Secret"


def test_doctor_masks_the_camera_password_when_it_opens_the_camera_itself(tmp_path):
    settings = make_settings(
        tmp_path / "data", camera_source=f"http://admin:{PASSWORD}@127.0.0.1:9/video.mjpg"
    )
    facts = doctor.gather_camera(settings, None, seconds=0.2)  # no kiosk running: doctor opens it
    check = doctor.check_camera(facts)
    assert check.status == doctor.FAIL  # nothing listens there
    assert "127.0.0.1:9" in check.detail
    assert PASSWORD not in check.detail and PASSWORD not in str(facts)
