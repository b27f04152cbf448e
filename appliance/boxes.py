"""Face boxes in frame pixels, and the overlap the tracker associates them by.

No models here: the tracker and the decision code import boxes without loading dlib.
"""

from __future__ import annotations

Box = tuple[int, int, int, int]  # (top, right, bottom, left), face_recognition's order


def box_height(box: Box) -> int:
    return box[2] - box[0]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    top, right = max(a[0], b[0]), min(a[1], b[1])
    bottom, left = min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    if inter == 0:
        return 0.0
    area_a = (a[1] - a[3]) * (a[2] - a[0])
    area_b = (b[1] - b[3]) * (b[2] - b[0])
    return inter / float(area_a + area_b - inter)
