"""What the kiosk and the CLI build before they decide: the face engine, the liveness check and a
camera source checked to give frames.

Kept out of the kiosk so that `enroll`, `identify`, `calibrate` and the benchmarks build the same
engine as the door without importing the door's threads.
"""

from __future__ import annotations

import glob
from pathlib import Path

import cv2

from appliance.camera import SourceError, SourceSpec
from appliance.faces import DetectorConfig, FaceEngine
from appliance.image_files import is_image_file
from appliance.liveness import LivenessCheck
from appliance.settings import Settings


def make_engine(settings: Settings) -> FaceEngine:
    """The face engine the settings describe (detection size, landmarks when liveness is on)."""
    return FaceEngine(
        DetectorConfig(
            width=settings.detect_width,
            upsample=settings.detect_upsample,
            kind=settings.detector,
        ),
        landmarks=settings.liveness != "off",
    )


def make_liveness_check(settings: Settings) -> LivenessCheck | None:
    """The configured liveness check, or None when ``FACEGATE_LIVENESS=off``."""
    if settings.liveness == "off":
        return None
    from appliance.liveness import make_liveness

    return make_liveness(settings)


def check_source(spec: SourceSpec) -> None:
    """Fail fast, with a clear message, on a source that can never give a frame."""
    if spec.kind == "file":
        _check_video_file(spec)
    if spec.kind == "images" and not any(
        is_image_file(p) for p in Path(str(spec.target)).iterdir()
    ):
        raise SourceError(f"the folder {spec.target} holds no images (.jpg, .png, ...)")
    if spec.kind == "camera" and isinstance(spec.target, str) and not Path(spec.target).exists():
        found = ", ".join(sorted(glob.glob("/dev/video*"))) or "none"
        raise SourceError(
            f"no camera at {spec.target}: no such device (cameras on this machine: {found}); "
            "check the cable, or name another source with --source or FACEGATE_CAMERA_SOURCE"
        )
    if spec.kind == "camera" and isinstance(spec.target, int):
        if not glob.glob("/dev/video*"):
            raise SourceError(
                f"no camera found (camera index {spec.target}, no /dev/video* device). Connect a "
                'camera, or name a source: `make run ARGS="--source clip.mp4"` or '
                "`python -m appliance run --source clip.mp4` (a video file, a folder of images, "
                "/dev/videoN or an rtsp:// URL), or set FACEGATE_CAMERA_SOURCE in .env"
            )


def _check_video_file(spec: SourceSpec) -> None:
    cap = cv2.VideoCapture(str(spec.target))
    try:
        readable = cap.isOpened() and cap.read()[0]
    finally:
        cap.release()
    if not readable:
        raise SourceError(
            f"{spec.target} is not a video file this machine can decode; name a video file, "
            "a folder of images, a camera (0, /dev/videoN) or a stream URL with --source"
        )
