#!/usr/bin/env python3
"""Per-frame analysis of a clip against the door's gallery: when the target is in view, accepted.

Why a bench row is slow is often the clip, not the kiosk: a door can only open on frames where
the person's face is found and matches under the door's rules. This looks at every frame the way
the door would if it had all the CPU it wanted: HOG with the door's detector settings
(``detect_width``, ``detect_upsample``: 640 px, upsample 1), a dlib encoding of each face, and
the real :meth:`appliance.match.Gallery.match` against lin_manuel_miranda and alex_lacamoire
enrolled from the fixtures as scripts/bench_pi_budget.py enrols them, with the shipped background
cohort, default settings. A face is *accepted* when a vote would count it: matched under
``match_threshold`` and ``match_cohort_ratio``, at least ``match_margin`` from the runner-up, and
at least ``min_face_px`` tall (smaller faces are not encoded); *strong* when it would decide alone
(``strong_match_threshold``). The door still needs its votes (2 accepted encodings, or 1 strong),
liveness (landmark motion over >= 0.5 s) and the frames the CPU lets it process.

The target is *in view* in a frame when a face there is nearest to them at most ``IN_VIEW_MAX``
away (further: a stranger or a turned face); *windows* are runs of such frames, allowing gaps of
up to ``MAX_GAP_S`` (a missed detection is not someone leaving).

    python scripts/clip_windows.py [--clip PATH] [--frames]

Prints the runs of frames with the same verdict and the windows; writes
scripts/results/clip_windows.json (the bench reads it back when clip and settings still match).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from bench_common import REPO, fixtures_root, table, write_results

PEOPLE = ["lin_manuel_miranda", "alex_lacamoire"]
TARGET = "lin_manuel_miranda"
IN_VIEW_MAX = 0.65  # nearest to the target at most this far: the target's face (else someone else)
MAX_GAP_S = 0.1  # frames without the target's face that do not split a window
RESULTS = "clip_windows"


def default_clip() -> Path:
    return fixtures_root() / "video" / "short_hamilton_clip.mp4"


def _rules(settings) -> dict:
    """The settings the verdicts depend on (the cache key of the results file, with the clip)."""
    return {
        "match_threshold": settings.match_threshold,
        "match_margin": settings.match_margin,
        "match_cohort_ratio": settings.match_cohort_ratio,
        "match_background_cohort": settings.match_background_cohort,
        "strong_match_threshold": settings.strong_match_threshold,
        "min_face_px": settings.min_face_px,
        "detect_width": settings.detect_width,
        "detect_upsample": settings.detect_upsample,
    }


def _finite(x: float) -> float | None:
    return round(float(x), 3) if math.isfinite(x) else None


def _clip_key(clip: Path) -> dict:
    return {"clip": clip.name, "bytes": clip.stat().st_size, "people": PEOPLE, "target": TARGET}


def analyse(clip: Path, *, progress: bool = True) -> dict:
    """Every frame of ``clip``: its faces, and the target's face with the door's verdict on it."""
    import cv2

    from appliance.faces import DetectorConfig, FaceEngine

    settings, gallery = enrolled_gallery_for_door()
    names = {pid: row["external_id"] or row["name"] for pid, row in gallery.persons.items()}
    engine = FaceEngine(
        DetectorConfig(settings.detect_width, settings.detect_upsample), landmarks=False
    )
    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {clip}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames: list[dict] = []
    started = time.monotonic()
    i = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        boxes = engine.detect(rgb)
        faces = []
        for box, emb in zip(boxes, engine.encode(rgb, boxes), strict=True):
            m = gallery.match(emb, settings.match_threshold, settings.match_cohort_ratio)
            height = box[2] - box[0]
            accepted = (
                m.person_id is not None
                and m.margin >= settings.match_margin
                and height >= settings.min_face_px
            )
            faces.append(
                {
                    "box": list(box),
                    "px": height,
                    "nearest": names.get(m.best_person_id or "", None),
                    "distance": _finite(m.distance),
                    "ratio": _finite(m.ratio),
                    "margin": _finite(m.margin),
                    "accepted": accepted,
                    "strong": accepted and m.distance <= settings.strong_match_threshold,
                }
            )
        frames.append({"frame": i, "t": round(i / fps, 3), "faces": faces})
        i += 1
        if progress and i % 50 == 0:
            print(f"  {i}/{total} frames ({time.monotonic() - started:.0f} s)", flush=True)
    cap.release()
    for f in frames:
        f["target"] = target_face(f["faces"])
    return {
        "key": {**_clip_key(clip), "rules": _rules(settings)},
        "fps": fps,
        "frames_total": len(frames),
        "in_view_max": IN_VIEW_MAX,
        "max_gap_s": MAX_GAP_S,
        "windows": windows(frames, fps),
        "frames": frames,
    }


def enrolled_gallery_for_door():
    from bench_common import enrolled_gallery

    return enrolled_gallery(PEOPLE, door_cohort=True)


def target_face(faces: list[dict]) -> dict | None:
    """The target's face among a frame's faces: the nearest one to them, if near enough."""
    theirs = [
        f
        for f in faces
        if f["nearest"] == TARGET and f["distance"] is not None and f["distance"] <= IN_VIEW_MAX
    ]
    return min(theirs, key=lambda f: f["distance"]) if theirs else None


def _runs(indices: list[int], max_gap: int) -> list[tuple[int, int]]:
    """Runs of frame indices, joining those at most ``max_gap`` frames apart."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and i - runs[-1][1] <= max_gap + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def windows(frames: list[dict], fps: float) -> list[dict]:
    """Where the target is in view, and within each window where they are accepted."""
    gap = int(MAX_GAP_S * fps)
    seen = [f["frame"] for f in frames if f["target"]]
    out = []
    for a, b in _runs(seen, gap):
        faces = [frames[i]["target"] for i in range(a, b + 1) if frames[i]["target"]]
        ok = [i for i in range(a, b + 1) if (frames[i]["target"] or {}).get("accepted")]
        strong = [i for i in ok if frames[i]["target"]["strong"]]
        out.append(
            {
                "start_s": round(a / fps, 3),
                "end_s": round(b / fps, 3),
                "frames": b - a + 1,
                "frames_with_face": len(faces),
                "px": [min(f["px"] for f in faces), max(f["px"] for f in faces)],
                "distance": [
                    min(f["distance"] for f in faces),
                    max(f["distance"] for f in faces),
                ],
                "frames_accepted": len(ok),
                "frames_strong": len(strong),
                "first_accepted_s": round(ok[0] / fps, 3) if ok else None,
                "first_strong_s": round(strong[0] / fps, 3) if strong else None,
                "accepted_runs_s": [
                    [round(x / fps, 3), round(y / fps, 3)] for x, y in _runs(ok, gap)
                ],
            }
        )
    return out


def _verdict(f: dict) -> str:
    tf = f["target"]
    if tf is None:
        return "others only" if f["faces"] else "no face"
    if tf["strong"]:
        return "target: strong"
    return "target: accepted" if tf["accepted"] else "target: refused"


def _nearest(faces: list[dict]) -> dict | None:
    known = [f for f in faces if f["distance"] is not None]
    return min(known, key=lambda f: f["distance"]) if known else None


def segments(result: dict) -> list[list]:
    """Runs of consecutive frames with the same verdict: the compact per-frame table."""
    rows: list[list] = []
    fps = result["fps"]
    cur: list[dict] = []

    def flush() -> None:
        if not cur:
            return
        # the target's face; in frames of others only, the face nearest to anyone enrolled
        tfs = [t for t in (f["target"] or _nearest(f["faces"]) for f in cur) if t]

        def span(key: str) -> str:
            if not tfs:
                return ""
            lo, hi = min(t[key] for t in tfs), max(t[key] for t in tfs)
            return f"{lo}" if lo == hi else f"{lo}-{hi}"

        rows.append(
            [
                f"{cur[0]['frame']}-{cur[-1]['frame']}",
                f"{cur[0]['frame'] / fps:.2f}-{cur[-1]['frame'] / fps:.2f}",
                _verdict(cur[0]),
                max(len(f["faces"]) for f in cur),
                "/".join(sorted({t["nearest"] or "-" for t in tfs})),
                span("px"),
                span("distance"),
                span("ratio"),
                span("margin"),
            ]
        )
        cur.clear()

    for f in result["frames"]:
        if cur and _verdict(f) != _verdict(cur[-1]):
            flush()
        cur.append(f)
    flush()
    return rows


SEGMENT_HEADERS = [
    "frames",
    "t_s",
    "verdict",
    "faces",
    "nearest",
    "px",
    "distance",
    "ratio",
    "margin",
]


def summary_lines(result: dict, start_s: float = 0.0) -> list[str]:
    """The windows, one line each; with ``start_s`` (a cut of the clip), only those after it,
    with times from the cut's start and in the original clip."""
    lines = []
    for w in result["windows"]:
        if w["end_s"] < start_s:
            continue

        def at(t: float | None) -> str:
            if t is None:
                return "never"
            return f"{t - start_s:.2f} s" + (f" (orig {t:.2f})" if start_s else "")

        start = max(w["start_s"], start_s)
        accepted = ", ".join(
            f"{a - start_s:.2f}-{b - start_s:.2f}" for a, b in w["accepted_runs_s"] if b >= start_s
        )
        lines.append(
            f"{TARGET} in view {at(start)} to {at(w['end_s'])}: {w['px'][0]}-{w['px'][1]} px, "
            f"distance {w['distance'][0]}-{w['distance'][1]}; accepted in "
            f"{w['frames_accepted']}/{w['frames']} frames, first at {at(w['first_accepted_s'])}"
            f", strong first at {at(w['first_strong_s'])}; accepted runs (s): {accepted or '-'}"
        )
    return lines or [f"{TARGET} never in view"]


def first_in_view_s(result: dict, start_s: float = 0.0) -> float | None:
    """When the target's face first appears at or after ``start_s`` (clip time), or None."""
    fps = result["fps"]
    for f in result["frames"]:
        if f["frame"] / fps >= start_s - 1e-6 and f["target"]:
            return round(f["frame"] / fps, 3)
    return None


def first_accepted_s(result: dict, start_s: float = 0.0) -> float | None:
    """When the door's rules first accept the target's face at or after ``start_s``, or None."""
    fps = result["fps"]
    for f in result["frames"]:
        if f["frame"] / fps >= start_s - 1e-6 and (f["target"] or {}).get("accepted"):
            return round(f["frame"] / fps, 3)
    return None


def load_or_analyse(clip: Path, *, progress: bool = True) -> dict:
    """The results file when it describes this clip under today's settings; else analyse now
    (about a minute of one core) and write it."""
    from appliance.settings import load_settings

    path = REPO / "scripts" / "results" / f"{RESULTS}.json"
    want = {**_clip_key(clip), "rules": _rules(load_settings(data_dir=Path(tempfile.mkdtemp())))}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        if old.get("key") == want:
            return old
    if progress:
        print(f"analysing {clip.name} frame by frame (HOG + encodings) ...", flush=True)
    result = analyse(clip, progress=progress)
    write_results(RESULTS, result)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=Path, default=None, help="default: the fixture clip")
    ap.add_argument("--frames", action="store_true", help="also print every frame")
    args = ap.parse_args()
    clip = args.clip or default_clip()
    if not clip.exists():
        sys.exit(f"no such clip: {clip}")
    result = analyse(clip)
    print(table(segments(result), SEGMENT_HEADERS))
    if args.frames:
        rows = []
        for f in result["frames"]:
            tf = f["target"] or {}
            rows.append(
                [f["frame"], f"{f['frame'] / result['fps']:.2f}", len(f["faces"])]
                + [tf.get(k, "") for k in ("px", "distance", "ratio", "margin", "accepted")]
            )
        print(table(rows, ["frame", "t_s", "faces", "px", "distance", "ratio", "margin", "acc"]))
    print("\n".join(summary_lines(result)))
    print(f"wrote {write_results(RESULTS, result)}")


if __name__ == "__main__":
    main()
