"""Frame sources: classification, folders of images, and a replayed file's clock."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from appliance.camera import CameraReader, FrameSlot, SourceError, parse_source


def test_sources_are_classified(tmp_path, clip_path):
    assert parse_source("0").kind == "camera" and parse_source("0").target == 0
    assert parse_source("/dev/video2").kind == "camera"
    assert parse_source("rtsp://cam.local/stream").kind == "stream"
    assert parse_source(str(clip_path)).kind == "file"
    assert parse_source(str(tmp_path)).kind == "images"
    with pytest.raises(SourceError, match="--source"):
        parse_source(str(tmp_path / "nope.mp4"))


def _read_all(spec, *, once: bool, limit: int):
    slot, stop = FrameSlot(keep_all=True), threading.Event()
    reader = CameraReader(spec, slot, stop, fast=True, once=once, max_backoff=0.01)
    reader.start()
    frames = []
    while len(frames) < limit:
        f = slot.get(timeout=5)
        if f is None:
            break
        frames.append(f)
    stop.set()
    reader.join(5)
    return frames


def test_image_folder_plays_in_name_order_and_skips_unreadable_files(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((20, 30, 3), i * 50, np.uint8))
    (tmp_path / "001b.jpg").write_text("not an image")
    frames = _read_all(parse_source(str(tmp_path)), once=True, limit=10)
    assert [int(f.bgr[0, 0, 0]) for f in frames] == [0, 50, 100]


def test_a_replayed_folder_keeps_its_clock_running(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((20, 30, 3), i, np.uint8))
    frames = _read_all(parse_source(str(tmp_path)), once=False, limit=7)
    times = [f.t for f in frames]
    assert len(times) == 7 and times == sorted(times) and len(set(times)) == 7


def test_a_live_frame_keeps_the_time_its_camera_stamped_it():
    from appliance.camera import capture_time

    # three frames queued by the driver while the pipeline was busy, read in one burst at 10.30
    stamps = [10.200, 10.233, 10.267]
    times = [capture_time(s * 1000, 10.30, last=10.1) for s in stamps]
    assert times == pytest.approx(stamps)
    # backends without a monotonic stamp (0, or an RTSP stream's own clock): the time of reading
    assert capture_time(0.0, 10.3, last=10.1) == 10.3
    assert capture_time(2_500.0, 10.3, last=10.1) == 10.3
    assert capture_time(99_000_000.0, 10.3, last=10.1) == 10.3
    # never before the previous frame
    assert capture_time(10_200.0, 10.3, last=10.25) == 10.25
