"""The face models: HOG detection on a downscaled frame, 68-point landmarks, 128-d encodings.

A thin layer over dlib and the model files that ship in the face_recognition_models package. Each
model loads once per process, when an engine first needs it (start-up cost is what a watchdog
restart costs at the door: importing face_recognition itself would load all four of its models and
pkg_resources, about twice the work). Every call here is thread-compatible but not meant to be
shared across threads running at the same time. Encodings are computed exactly as
face_recognition.face_encodings(model="small") computes them.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np
from PIL import ImageFile

from appliance.boxes import Box

# face_recognition (where something imports it) switches Pillow to decoding truncated files as if
# complete (grey bottom half); an enrolment from half a photo must be refused instead.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_MODEL_FILES = {
    "landmarks_68": ("shape_predictor_68_face_landmarks.dat", dlib.shape_predictor),
    "landmarks_5": ("shape_predictor_5_face_landmarks.dat", dlib.shape_predictor),
    "encoder": ("dlib_face_recognition_resnet_model_v1.dat", dlib.face_recognition_model_v1),
}
_models: dict[str, object] = {}
_models_lock = threading.Lock()


def model(name: str):
    """One of the dlib models shipped in face_recognition_models, loaded once per process."""
    with _models_lock:
        if name not in _models:
            spec = importlib.util.find_spec("face_recognition_models")
            if spec is None or not spec.submodule_search_locations:
                raise RuntimeError("face_recognition_models is not installed (pip install it)")
            filename, load = _MODEL_FILES[name]
            path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
            _models[name] = load(str(path))
        return _models[name]


def _rect(box: Box) -> dlib.rectangle:
    top, right, bottom, left = box
    return dlib.rectangle(left, top, right, bottom)


#: Name stored with every embedding; a gallery only compares embeddings of the same model.
MODEL_NAME = "dlib_resnet_v1"


@dataclass(frozen=True)
class DetectorConfig:
    width: int = 640  # frames wider than this are downscaled before HOG
    upsample: int = 0  # HOG pyramid upsampling: 1 finds faces down to ~40 px of the scaled frame
    kind: str = "hog"  # whole-frame search: "hog" (dlib) or "blazeface" (appliance/blazeface.py)


#: Face heights (px) a tracked face's window is scaled to for re-finding it, tried in order.
NEAR_FACE_PX = (100, 80, 130)


class FaceEngine:
    """Detection, landmarks and encoding with the dlib models that ship with face_recognition."""

    def __init__(self, detector: DetectorConfig | None = None, *, landmarks: bool = True) -> None:
        """Loads the models now (not at the first face); ``landmarks=False`` skips the 68-point
        model, which only the liveness check needs (the largest file, a third of start-up)."""
        self.cfg = detector or DetectorConfig()
        self._hog = dlib.get_frontal_face_detector()
        self._blazeface = None
        if self.cfg.kind == "blazeface":
            from appliance.blazeface import BlazeFace

            self._blazeface = BlazeFace()
        elif self.cfg.kind != "hog":
            raise ValueError(f"unknown face detector {self.cfg.kind!r}: 'hog' or 'blazeface'")
        for name in ("landmarks_5", "encoder") + (("landmarks_68",) if landmarks else ()):
            model(name)

    def detect(
        self, rgb: np.ndarray, *, upsample: int | None = None, max_side: int | None = None
    ) -> list[Box]:
        """Find faces on a downscaled copy; boxes come back in frame pixels.

        Live frames are scaled to the configured width; ``max_side`` instead bounds the longer
        side (photos of any orientation). HOG runs on grayscale with ``upsample`` (default: the
        configured one); BlazeFace, when configured, ignores ``upsample``.
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
        if self._blazeface is not None:
            found = self._blazeface.detect(small)
        else:
            gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
            rects = self._hog(gray, self.cfg.upsample if upsample is None else upsample)
            found = [(r.top(), r.right(), r.bottom(), r.left()) for r in rects]
        boxes = []
        for b_top, b_right, b_bottom, b_left in found:
            top = max(0, round(b_top / scale))
            left = max(0, round(b_left / scale))
            bottom = min(h, round(b_bottom / scale))
            right = min(w, round(b_right / scale))
            if bottom - top >= 8 and right - left >= 8:
                boxes.append((top, right, bottom, left))
        return boxes

    def detect_near(
        self, rgb: np.ndarray, box: Box, face_px: tuple[int, ...] = NEAR_FACE_PX
    ) -> Box | None:
        """Re-find a tracked face in a small window around its last box (a few ms, not a frame).

        The window is the box grown by its own size on every side, scaled so the face is about
        ``face_px[0]`` tall: large enough for HOG without upsampling, small enough to be cheap.
        HOG on a small or blurred face finds it at one scale and not at the next, so a miss is
        tried again at the other sizes of ``face_px`` (a face lost for one frame costs the
        track a vote, or its liveness a frame, on a slow CPU).
        """
        h, w = rgb.shape[:2]
        top, right, bottom, left = box
        bh, bw = bottom - top, right - left
        y0, y1 = max(0, top - bh), min(h, bottom + bh)
        x0, x1 = max(0, left - bw), min(w, right + bw)
        if y1 - y0 < 8 or x1 - x0 < 8:
            return None
        window = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        for px in face_px:
            scale = px / float(max(bh, 1))
            roi = cv2.resize(window, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            rects = self._hog(roi, 0)
            if rects:
                break
        else:
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
        predictor, encoder = model("landmarks_5"), model("encoder")
        return [
            np.asarray(
                encoder.compute_face_descriptor(rgb, predictor(rgb, _rect(b)), 1), np.float32
            )
            for b in boxes
        ]

    def landmarks(self, rgb: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """dlib's 68 landmarks per face as (68, 2) float32 arrays of (x, y) frame pixels."""
        predictor = model("landmarks_68")
        shapes = [predictor(rgb, _rect(b)) for b in boxes]
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
