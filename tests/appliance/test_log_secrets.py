"""The log file keeps secrets out of tracebacks too, and its rotated (gzipped) files are 0600."""

from __future__ import annotations

import gzip
import os
import stat

import pytest
from loguru import logger

from appliance.logs import configure_logging
from appliance.settings import load_settings

PASSWORD = "hunter2-Secret"


@pytest.fixture
def log_file(tmp_path):
    shared = tmp_path / "var-log"  # an existing, world-readable folder such as /var/log
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    path = shared / "facegate.log"
    settings = load_settings(data_dir=tmp_path / "data", log_file=path, log_rotate_mb=1)
    old = os.umask(0o022)  # a shell's umask, not the unit's 0077
    try:
        configure_logging(settings)
        yield path
    finally:
        logger.remove()
        os.umask(old)


def test_an_exception_quoting_a_camera_url_is_logged_without_its_password(log_file):
    try:
        raise RuntimeError(f"cannot open rtsp://admin:{PASSWORD}@10.0.0.9/stream")
    except RuntimeError:
        logger.exception("camera failed")
    logger.complete()
    text = log_file.read_text()
    assert "camera failed" in text and "RuntimeError: cannot open rtsp://***@10.0.0.9" in text
    assert PASSWORD not in text


def test_rotated_log_files_are_owner_only(log_file):
    for _ in range(12_000):  # a little over 1 MB: one rotation
        logger.info("x" * 100)
    logger.complete()
    rotated = [p for p in log_file.parent.iterdir() if p.name.endswith(".gz")]
    assert rotated, list(log_file.parent.iterdir())
    for path in rotated:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert b"INFO" in gzip.open(path).read(200)  # a readable gzip of the log
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
