#!/usr/bin/env python3
"""Build the background cohort shipped in appliance/data/: embeddings of people not enrolled.

The cohort ratio (``FACEGATE_MATCH_COHORT_RATIO``) compares a probe's best distance with its mean
distance to the next 5 people. With few people enrolled there are not 5 others, so the door also
uses a fixed set of faces of nobody in the building (the T-norm / impostor-cohort idea). Only
128-d dlib embeddings are written, one per background person, never a photo.

Sources must allow redistribution of derived data. The shipped file is built from the MIT-licensed
test images of deepface (github.com/serengil/deepface, tests/unit/dataset), *excluding* every
identity of the deepface set the benchmarks evaluate on (img1-img25 and their other photos):

    python scripts/build_background_cohort.py deepface/tests/unit/dataset \\
        --pairs deepface/tests/unit/dataset/{master,face-recognition-pivot}.csv \\
        --exclude /work/data/faces/deepface fixtures/people fixtures/probes

(full command with the commit: appliance/data/README.md)

Photos are grouped into people with the same-person pairs of ``--pairs``; a person any of whose
faces is within ``--same`` of an excluded face is left out entirely (so the evaluation people of
the deepface set and the fixtures are never in the cohort), and one face is kept per person. In
a photo of several people (not in any pair) each face is a person.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from pathlib import Path

import numpy as np
from bench_common import REPO
from loguru import logger

from appliance.enroll import load_photo
from appliance.faces import FaceEngine
from appliance.match import BACKGROUND_COHORT_PATH

SUFFIXES = {".jpg", ".jpeg", ".png"}


def faces_in(engine: FaceEngine, path: Path, min_px: int) -> list[np.ndarray]:
    """Every face of at least ``min_px`` in the photo, encoded."""
    rgb = load_photo(path.read_bytes(), str(path))
    boxes = engine.detect(rgb, upsample=1, max_side=2048)
    boxes = [b for b in boxes if min(b[2] - b[0], b[1] - b[3]) >= min_px]
    return list(engine.encode(rgb, boxes)) if boxes else []


def photos(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES)


def identity_groups(pairs: list[Path], files: list[Path]) -> list[list[Path]]:
    """Photos of one person together: the "Yes" pairs of deepface-style CSVs (file_x, file_y,
    decision, ...) joined transitively; every other photo alone."""
    parent = {f.name: f.name for f in files}

    def root(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for path in pairs:
        with path.open() as fh:
            for row in csv.reader(fh):
                a, b = (Path(x).name for x in row[:2]) if len(row) > 2 else ("", "")
                if row[2:3] == ["Yes"] and a in parent and b in parent:
                    parent[root(a)] = root(b)
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(root(f.name), []).append(f)
    return list(groups.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="a folder of photos to take faces from")
    ap.add_argument(
        "--pairs", nargs="*", type=Path, default=[], help="CSVs of same-person pairs (deepface's)"
    )
    ap.add_argument("--exclude", nargs="*", type=Path, default=[], help="people to leave out")
    ap.add_argument("--same", type=float, default=0.5, help="distance under which faces match")
    ap.add_argument("--min-px", type=int, default=60, help="smaller faces are skipped")
    ap.add_argument("--origin", default="", help="where the photos came from (for the JSON)")
    ap.add_argument("--out", type=Path, default=BACKGROUND_COHORT_PATH)
    args = ap.parse_args()
    logger.remove()
    engine = FaceEngine()

    excluded = [e for root in args.exclude for p in photos(root) for e in faces_in(engine, p, 20)]
    ex = np.stack(excluded) if excluded else np.zeros((0, 128))
    print(f"{len(excluded)} faces to exclude from {len(args.exclude)} folder(s)")

    def is_excluded(emb: np.ndarray) -> bool:
        return bool(len(ex)) and float(np.linalg.norm(ex - emb, axis=1).min()) < args.same

    kept: list[np.ndarray] = []
    origin: list[str] = []
    dropped: list[str] = []
    for group in identity_groups(args.pairs, photos(args.source)):
        faces = {p: faces_in(engine, p, args.min_px) for p in group}
        if len(group) > 1:  # one known person: all out if any photo is an excluded person
            if any(is_excluded(e) for fs in faces.values() for e in fs):
                dropped.append("+".join(p.name for p in group))
                continue
            first = next((p for p in group if len(faces[p]) == 1), None)
            if first is not None:
                kept.append(faces[first][0])
                origin.append(f"{first.name} (1 of {len(group)} photos of one person)")
            continue
        # a photo of its own: each face a different person
        for i, emb in enumerate(faces[group[0]]):
            if is_excluded(emb):
                dropped.append(f"{group[0].name}#{i}")
            else:
                kept.append(emb)
                origin.append(f"{group[0].name}#{i}")
    arr = np.stack(kept).astype(np.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, arr)
    digest = hashlib.sha256(arr.tobytes()).hexdigest()[:16]
    meta = {
        "source": args.origin,
        "people": len(arr),
        "from": origin,
        "dropped_as_excluded": dropped,
        "sha256": digest,
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{len(arr)} background people; dropped as excluded people: {', '.join(dropped)}")
    print(f"wrote {args.out.relative_to(REPO)} (sha256 {digest})")


if __name__ == "__main__":
    main()
