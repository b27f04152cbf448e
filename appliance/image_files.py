"""Which files are photos: one list for the CLI, the camera's image folders and calibration.

Light on purpose (no OpenCV, no PIL): the CLI imports it before loading any model. Every suffix
here is read both by PIL (enrolment, calibration) and by OpenCV (the camera's image folders).
The console keeps an equal copy (``admin_ui.bulk.PHOTO_SUFFIXES``; it imports nothing of the
door), and a test keeps the two equal.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm"}
)


def is_image_file(path: Path) -> bool:
    """Whether ``path`` names a photo by its suffix (case does not matter)."""
    return path.suffix.lower() in IMAGE_SUFFIXES
