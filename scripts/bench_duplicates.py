"""Where "the same photo twice" ends: distances of re-saved copies vs. other photos of a person.

Enrolment skips a photo whose face is closer than ``appliance.enroll.DUPLICATE_DISTANCE`` to one
the person already has. This measures, on the fixture people, how far a resized (80 %) and
re-saved (JPEG quality 70) copy lands from its original, and how close two different photos of
one person come: the threshold must sit clearly between the two.

    .venv/bin/python scripts/bench_duplicates.py
"""

from __future__ import annotations

import io
import itertools

import numpy as np
from bench_common import fixtures_root, table, write_results
from PIL import Image


def main() -> None:
    from appliance.enroll import DUPLICATE_DISTANCE, load_photo
    from appliance.faces import FaceEngine

    engine = FaceEngine()

    def embed(rgb: np.ndarray) -> np.ndarray:
        boxes = engine.detect(rgb, upsample=1, max_side=1024)
        return engine.encode(rgb, boxes[:1])[0]

    originals, copies = {}, []
    for path in sorted((fixtures_root() / "people").glob("*/*")):
        rgb = load_photo(path.read_bytes(), str(path))
        originals[path] = embed(rgb)
        img = Image.fromarray(rgb)
        buf = io.BytesIO()
        img.resize((int(img.width * 0.8), int(img.height * 0.8))).save(buf, "JPEG", quality=70)
        copy = embed(load_photo(buf.getvalue(), "copy"))
        copies.append(float(np.linalg.norm(copy - originals[path])))
    same_person = [
        float(np.linalg.norm(originals[a] - originals[b]))
        for a, b in itertools.combinations(originals, 2)
        if a.parent == b.parent
    ]
    rows = [
        ["re-saved copy vs original", len(copies), f"{min(copies):.3f}", f"{max(copies):.3f}"],
        [
            "two photos of one person",
            len(same_person),
            f"{min(same_person):.3f}",
            f"{max(same_person):.3f}",
        ],
    ]
    print(table(rows, ["pair", "n", "min distance", "max distance"]))
    print(f"DUPLICATE_DISTANCE = {DUPLICATE_DISTANCE}")
    write_results(
        "bench_duplicates",
        {
            "duplicate_distance": DUPLICATE_DISTANCE,
            "copy_max": max(copies),
            "copy_min": min(copies),
            "same_person_min": min(same_person),
            "same_person_max": max(same_person),
            "pairs": {"copies": len(copies), "same_person": len(same_person)},
        },
    )
    assert max(copies) < DUPLICATE_DISTANCE < min(same_person), "the threshold is not between"


if __name__ == "__main__":
    main()
