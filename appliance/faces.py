"""The face models: HOG detection on a downscaled frame, 68-point landmarks, 128-d encodings.

A thin layer over dlib through face_recognition. The models load once per process (at import of
face_recognition); every call here is thread-compatible but not meant to be shared across threads
running at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import face_recognition
import numpy as np
from face_recognition import api as fr_api
from PIL import ImageFile

from appliance.boxes import Box

# face_recognition switches Pillow to decoding truncated files as if complete (grey bottom half);
# an enrolment from half a photo must be refused instead, so switch it back.
ImageFile.LOAD_TRUNCATED_IMAGES = False

#: Name stored with every embedding; a gallery only compares embeddings of the same model.
MODEL_NAME = "dlib_resnet_v1"


@dataclass(frozen=True)
class DetectorConfig:
    width: int = 640  # frames wider than this are downscaled before HOG
    upsample: int = 0  # HOG pyramid upsampling: 1 finds faces down to ~40 px of the scaled frame


class FaceEngine:
    """Detection, landmarks and encoding with the dlib models that ship with face_recognition."""

    def __init__(self, detector: DetectorConfig | None = None) -> None:
        self.cfg = detector or DetectorConfig()
        self._hog = dlib.get_frontal_face_detector()

    def detect(
        self, rgb: np.ndarray, *, upsample: int | None = None, max_side: int | None = None
    ) -> list[Box]:
        """Find faces with HOG on a grayscale, downscaled copy; boxes come back in frame pixels.

        Live frames are scaled to the configured width; ``max_side`` instead bounds the longer
        side (photos of any orientation).
        """
        h, w = rgb.shape[:2]
        if max_side is not None:
            scale = min(1.0, max_side / float(max(h, w)))
        else:
            scale = min(1.0, self.cfg.width / float(w))
        small = (
            rgb
            if scale >= 1.0
            else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        rects = self._hog(gray, self.cfg.upsample if upsample is None else upsample)
        boxes = []
        for r in rects:
            top = max(0, round(r.top() / scale))
            left = max(0, round(r.left() / scale))
            bottom = min(h, round(r.bottom() / scale))
            right = min(w, round(r.right() / scale))
            if bottom - top >= 8 and right - left >= 8:
                boxes.append((top, right, bottom, left))
        return boxes

    def detect_near(self, rgb: np.ndarray, box: Box, face_px: int = 100) -> Box | None:
        """Re-find a tracked face in a small window around its last box (a few ms, not a frame).

        The window is the box grown by its own size on every side, scaled so the face is about
        ``face_px`` tall: large enough for HOG without upsampling, small enough to be cheap.
        """
        h, w = rgb.shape[:2]
        top, right, bottom, left = box
        bh, bw = bottom - top, right - left
        y0, y1 = max(0, top - bh), min(h, bottom + bh)
        x0, x1 = max(0, left - bw), min(w, right + bw)
        if y1 - y0 < 8 or x1 - x0 < 8:
            return None
        scale = face_px / float(max(bh, 1))
        roi = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        roi = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        rects = self._hog(roi, 0)
        if not rects:
            return None
        cy, cx = (top + bottom) / 2.0, (left + right) / 2.0

        def mapped(r) -> Box:
            return (
                max(0, round(y0 + r.top() / scale)),
                min(w, round(x0 + r.right() / scale)),
                min(h, round(y0 + r.bottom() / scale)),
                max(0, round(x0 + r.left() / scale)),
            )

        boxes = [mapped(r) for r in rects]
        # the one nearest the old centre: a neighbour's face entering the window is not this track
        return min(
            boxes, key=lambda b: ((b[0] + b[2]) / 2 - cy) ** 2 + ((b[1] + b[3]) / 2 - cx) ** 2
        )

    def encode(self, rgb: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """128-d embeddings (float32) of the faces in ``boxes``, aligned on the full-size frame."""
        if not boxes:
            return []
        encs = face_recognition.face_encodings(rgb, known_face_locations=boxes, model="small")
        return [np.asarray(e, dtype=np.float32) for e in encs]

    def landmarks(self, rgb: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """dlib's 68 landmarks per face as (68, 2) float32 arrays of (x, y) frame pixels."""
        shapes = fr_api._raw_face_landmarks(rgb, boxes, model="large")
        return [np.array([(p.x, p.y) for p in s.parts()], dtype=np.float32) for s in shapes]


def sharpness(rgb: np.ndarray, box: Box) -> float:
    """Variance of the Laplacian of the face crop scaled to 150x150: low means blurred.

    Scaling first makes the figure comparable between a 60 px and a 400 px face.
    """
    top, right, bottom, left = box
    crop = rgb[top:bottom, left:right]
    if crop.size == 0:
        return 0.0
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (150, 150), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())
