#!/usr/bin/env python3
"""Whole-frame face detectors: dlib HOG (upsample 0 and 1) against BlazeFace through OpenCV DNN.

For each detector, on the fixture clip (640x360 frames, as the kiosk sees them) and the fixture
photos:
- CPU ms per frame (time.process_time): OpenCV on one thread (a Pi-like single core; dlib's HOG is
  single-threaded anyway), and OpenCV's default threads (CPU and wall ms).
- Recall on the clip: frames where HOG upsample 1 finds Lin-Manuel Miranda (a HOG box whose
  encoding is within 0.6 of his enrolled photo) and the detector has a box overlapping it (IoU >=
  0.3). Frames where HOG upsample 1 misses him but the detector's box encodes within 0.55 (the
  door's threshold) of him. Other boxes no HOG box overlaps: "confirmed" when HOG upsample 1 finds a
  face in that region enlarged to ~120 px, else "unconfirmed" (likely false detections).
- Recognition from its boxes: the face distance to Lin's enrolled photo from the detector's box
  (mapped to the dlib rectangle) against the HOG box's distance, on the same frames; the 68-point
  landmarks' mean offset from those of the HOG box (in % of the box side; liveness uses them).
- Photos (people/ and probes/): faces found against the faces each file shows, and the distance of
  each one-person probe to its person's enrolment photos (boxes of that detector vs HOG's).
- With ``--pipeline-only``: the real pipeline over the clip with each detector (CPU per video
  second, detection's and encoding's share, first grant, false grants).
- The box calibration (dlib square from BlazeFace's box: scale and vertical shift), fitted on the
  enrolment photos against HOG upsample 1, printed next to the constants the module ships.

    python scripts/bench_detectors.py [--every N] [--sheets /tmp/sheets]
    python scripts/bench_detectors.py --pipeline-only   # the whole pipeline, hog vs blazeface
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from bench_common import fixtures_root, table, write_results
from loguru import logger

from appliance import blazeface
from appliance.blazeface import BlazeFace
from appliance.boxes import iou
from appliance.enroll import load_photo
from appliance.faces import FaceEngine

LIN = "lin_manuel_miranda"
THRESHOLD = 0.55
FIRST_WINDOW_FRAMES = 21  # the clip's first 0.7 s, where his face is 43-52 px tall
CANDIDATES = [  # (name, variant, tiles, max_yaw): min score blazeface.MIN_SCORE unless named
    ("blazeface back, all poses, score>0.5", "back", False, None),
    ("blazeface back", "back", False, blazeface.MAX_YAW),
    ("blazeface back tiled", "back", True, blazeface.MAX_YAW),
    ("blazeface full_range", "full_range", False, blazeface.MAX_YAW),
    ("blazeface full_range tiled", "full_range", True, blazeface.MAX_YAW),
    ("blazeface short_range", "short_range", False, blazeface.MAX_YAW),
    ("blazeface short_range tiled", "short_range", True, blazeface.MAX_YAW),
]


def clip_frames(every: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(fixtures_root() / "video" / "short_hamilton_clip.mp4"))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames[::every]


def photos() -> list[tuple[str, str | None, int, np.ndarray]]:
    """(file, person or None, faces shown (at least), RGB) for people/ and probes/."""
    root = fixtures_root()
    out = []
    for folder in sorted((root / "people").iterdir()):
        for p in sorted(folder.iterdir()):
            out.append((f"people/{folder.name}/{p.name}", folder.name, 1, load(p)))
    for p in sorted((root / "probes").iterdir()):
        stem = p.stem
        if stem.startswith("two_faces"):
            person, n = None, 2
        elif stem.startswith("multi_face"):
            person, n = None, 3
        else:
            person, n = stem.split("__")[0], 1
        out.append((f"probes/{p.name}", person, n, load(p)))
    return out


def load(path) -> np.ndarray:
    return load_photo(path.read_bytes(), str(path))


def downscale(rgb: np.ndarray, max_side: int = 1024) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    s = min(1.0, max_side / float(max(h, w)))
    if s >= 1.0:
        return rgb, 1.0
    return cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA), s


def timed(fn, frames, threads: int | None) -> tuple[list, float, float]:
    """Run ``fn`` over the frames; (results, CPU ms per frame, wall ms per frame)."""
    if threads is not None:
        cv2.setNumThreads(threads)
    out = []
    c0, w0 = time.process_time(), time.perf_counter()
    for f in frames:
        out.append(fn(f))
    c1, w1 = time.process_time(), time.perf_counter()
    cv2.setNumThreads(1)
    n = max(1, len(frames))
    return out, 1000 * (c1 - c0) / n, 1000 * (w1 - w0) / n


def dist(engine, rgb, box, ref) -> float:
    return float(np.linalg.norm(engine.encode(rgb, [box])[0] - ref))


def landmark_offset(engine, rgb, box, ref_box) -> float:
    """Mean distance between the 68 points from ``box`` and from ``ref_box``, % of its side."""
    a, b = engine.landmarks(rgb, [box, ref_box])
    return float(100 * np.linalg.norm(a - b, axis=1).mean() / max(1, ref_box[2] - ref_box[0]))


def hog_confirms(engine, rgb, box) -> bool:
    """HOG (upsample 1) finds a face in the region of ``box``, enlarged so the face is ~120 px."""
    h, w = rgb.shape[:2]
    top, right, bottom, left = box
    side = max(8, bottom - top)
    y0, y1 = max(0, top - side), min(h, bottom + side)
    x0, x1 = max(0, left - side), min(w, right + side)
    crop = rgb[y0:y1, x0:x1]
    if crop.size == 0:
        return False
    s = 120.0 / side
    crop = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
    return bool(engine.detect(crop, upsample=1, max_side=max(crop.shape[:2])))


def calibrate(bf: BlazeFace, engine, shots) -> dict:
    """Median scale and vertical shift mapping BlazeFace's box onto HOG's on one-face photos."""
    scales, shifts, xshifts = [], [], []
    for _file, _person, n, rgb in shots:
        if n != 1:
            continue
        small, _ = downscale(rgb)
        hog = engine.detect(small, upsample=1, max_side=1024)
        faces = bf.faces(small)
        if len(hog) != 1 or not faces:
            continue
        top, right, bottom, left = hog[0]
        x0, y0, x1, y1 = faces[0].xyxy
        side = ((x1 - x0) + (y1 - y0)) / 2
        hside = ((bottom - top) + (right - left)) / 2
        scales.append(hside / side)
        shifts.append(((top + bottom) / 2 - (y0 + y1) / 2) / hside)
        xshifts.append(((left + right) / 2 - (x0 + x1) / 2) / hside)
    return {
        "photos": len(scales),
        "scale": round(float(np.median(scales)), 3) if scales else None,
        "shift_y": round(float(np.median(shifts)), 3) if shifts else None,
        "shift_x": round(float(np.median(xshifts)), 3) if xshifts else None,
    }


def clip_eval(engine, frames, boxes_per_frame, hog1, lin_boxes, lin_ref, crops, first_n) -> dict:
    """Recall, extra finds, unconfirmed boxes, distances and landmark offsets on the clip;
    the unconfirmed boxes' crops are appended to ``crops`` (to look at them)."""
    found, d_det, d_hog, lm, extra_lin, confirmed, unconfirmed = 0, [], [], [], 0, 0, 0
    found_first = 0
    for i, (rgb, boxes, hogs, lin) in enumerate(zip(frames, boxes_per_frame, hog1, lin_boxes)):
        if lin is not None:
            best = max(boxes, key=lambda b: iou(b, lin), default=None)
            if best is not None and iou(best, lin) >= 0.3:
                found += 1
                found_first += i < first_n
                d_det.append(dist(engine, rgb, best, lin_ref))
                d_hog.append(dist(engine, rgb, lin, lin_ref))
                lm.append(landmark_offset(engine, rgb, best, lin))
        for b in boxes:
            if any(iou(b, h) >= 0.3 for h in hogs):
                continue
            if lin is None and dist(engine, rgb, b, lin_ref) <= THRESHOLD:
                extra_lin += 1
            elif hog_confirms(engine, rgb, b):
                confirmed += 1
            else:
                unconfirmed += 1
                top, right, bottom, left = b
                crop = rgb[max(0, top) : bottom, max(0, left) : right]
                if crop.size:
                    crops.append(cv2.resize(crop, (64, 64)))
    d_det, d_hog = np.array(d_det), np.array(d_hog)
    diff = d_det - d_hog
    return {
        "lin_frames_found": found,
        "lin_frames_found_first_0_7s": found_first,
        "lin_missed_by_hog_found": extra_lin,
        "other_boxes_confirmed": confirmed,
        "other_boxes_unconfirmed": unconfirmed,
        "lin_distance_median": round(float(np.median(d_det)), 3) if found else None,
        "hog_distance_same_frames_median": round(float(np.median(d_hog)), 3) if found else None,
        "distance_diff_median": round(float(np.median(diff)), 3) if found else None,
        "distance_diff_p90": round(float(np.percentile(diff, 90)), 3) if found else None,
        "lin_within_threshold": int((d_det <= THRESHOLD).sum()),
        "hog_within_threshold_same_frames": int((d_hog <= THRESHOLD).sum()),
        "landmarks_offset_pct_median": round(float(np.median(lm)), 1) if lm else None,
    }


def photo_eval(engine, shots, detect, enrolled) -> dict:
    """Faces found on the photos and one-person probes' distances to their enrolment photos."""
    found, shown, exact, dists, misses = 0, 0, 0, [], []
    for file, person, n, rgb in shots:
        small, s = downscale(rgb)
        boxes = detect(small)
        shown += n
        found += min(n, len(boxes))
        exact += len(boxes) == n if n == 1 else len(boxes) >= n
        if len(boxes) < n:
            misses.append(file)
        if file.startswith("probes/") and person in enrolled and boxes:
            box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            enc = engine.encode(small, [box])[0]
            dists.append(min(float(np.linalg.norm(enc - e)) for e in enrolled[person]))
    return {
        "faces_found": found,
        "faces_shown": shown,
        "files_right_count": exact,
        "files": len(shots),
        "missed_in": misses,
        "probe_distance_median": round(float(np.median(dists)), 3) if dists else None,
        "probe_distances": [round(d, 3) for d in dists],
    }


def write_sheet(path: Path, crops: list[np.ndarray], per_row: int = 16) -> None:
    crops = crops + [np.zeros_like(crops[0])] * (-len(crops) % per_row)
    rows = [np.hstack(crops[i : i + per_row]) for i in range(0, len(crops), per_row)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


class CountingEngine:
    """Wraps a FaceEngine: CPU seconds and calls spent in each of its methods."""

    def __init__(self, inner) -> None:
        self.inner, self.cpu, self.calls = inner, {}, {}

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def timed_call(*a, **kw):
            t = time.process_time()
            try:
                return attr(*a, **kw)
            finally:
                self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - t
                self.calls[name] = self.calls.get(name, 0) + 1

        return timed_call


def pipeline_rows(liveness_modes: list[str]) -> list[dict]:
    """The real pipeline over the clip (every frame, as fast as it goes) with each detector:
    CPU per video second, where it goes, the first grant and false grants."""
    from bench_common import enrolled_gallery

    from appliance import store
    from appliance.faces import MODEL_NAME
    from appliance.match import Gallery, background_cohort
    from appliance.pipeline import Pipeline
    from appliance.startup import make_engine, make_liveness_check

    cap = cv2.VideoCapture(str(fixtures_root() / "video" / "short_hamilton_clip.mp4"))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    rows = []
    for liveness in liveness_modes:
        for kind in ("hog", "blazeface"):
            settings, _ = enrolled_gallery(
                [LIN, "alex_lacamoire"], detector=kind, liveness=liveness
            )
            # as the kiosk builds it (gallery_feed.py): with the background cohort
            db = store.open_db(settings.db_path)
            gallery = Gallery(
                store.load_gallery_rows(db, MODEL_NAME),
                background_cohort(settings.match_background_cohort),
            )
            engine = CountingEngine(make_engine(settings))
            pipeline = Pipeline(settings, engine, liveness=make_liveness_check(settings))
            pipeline.set_gallery(gallery)
            first, false_grants, denied = None, 0, 0
            c0 = time.process_time()
            for n, bgr in enumerate(frames):
                for o in pipeline.process(bgr, n / fps).outcomes:
                    if o.granted and o.person_name == LIN and first is None:
                        first = n / fps
                    false_grants += o.granted and o.person_name != LIN
                    denied += not o.granted
            cpu = time.process_time() - c0
            video_s = len(frames) / fps
            rows.append(
                {
                    "detector": kind,
                    "liveness": liveness,
                    "cpu_ms_per_video_s": round(1000 * cpu / video_s),
                    "detect_ms_per_video_s": round(1000 * engine.cpu.get("detect", 0) / video_s),
                    "detect_calls": engine.calls.get("detect", 0),
                    "encode_calls": engine.calls.get("encode", 0),
                    "encode_ms_per_video_s": round(1000 * engine.cpu.get("encode", 0) / video_s),
                    "first_grant_video_s": None if first is None else round(first, 3),
                    "false_grants": int(false_grants),
                    "denials": denied,
                }
            )
            print(f"  pipeline {kind} liveness {liveness}: done", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--every", type=int, default=1, help="use every Nth clip frame (quick runs)")
    ap.add_argument(
        "--pipeline-only",
        action="store_true",
        help="only the pipeline runs (written to bench_detectors_pipeline.json)",
    )
    ap.add_argument(
        "--sheets", help="folder for contact sheets of the boxes HOG does not confirm (PNG)"
    )
    args = ap.parse_args()
    logger.remove()
    cv2.setNumThreads(1)
    if args.pipeline_only:
        rows = pipeline_rows(["off", "motion"])
        print(table([list(r.values()) for r in rows], list(rows[0].keys())))
        print(f"wrote {write_results('bench_detectors_pipeline', {'rows': rows})}")
        return
    engine = FaceEngine()
    frames = clip_frames(args.every)
    shots = photos()
    print(f"{len(frames)} clip frames, {len(shots)} photos", flush=True)

    enrolled: dict[str, list[np.ndarray]] = {}
    for file, person, _n, rgb in shots:
        if file.startswith("people/"):
            small, _ = downscale(rgb)
            box = max(engine.detect(small, upsample=1, max_side=1024), key=lambda b: b[2] - b[0])
            enrolled.setdefault(person, []).append(engine.encode(small, [box])[0])
    lin_ref = enrolled[LIN][0]

    hog = {u: timed(lambda f, u=u: engine.detect(f, upsample=u), frames, None) for u in (0, 1)}
    hog1 = hog[1][0]
    lin_boxes = []
    for rgb, boxes in zip(frames, hog1):
        scored = [(dist(engine, rgb, b, lin_ref), b) for b in boxes]
        near = [sb for sb in scored if sb[0] <= 0.6]
        lin_boxes.append(min(near)[1] if near else None)
    lin_frames = sum(b is not None for b in lin_boxes)
    first_n = -(-FIRST_WINDOW_FRAMES // args.every)  # frames of the clip's first 0.7 s
    lin_first = sum(b is not None for b in lin_boxes[:first_n])
    print(f"HOG upsample 1 finds Lin-Manuel in {lin_frames}/{len(frames)} frames", flush=True)

    calib = {}
    for variant in ("back", "full_range", "short_range"):
        calib[variant] = calibrate(BlazeFace(variant, tiles=False), engine, shots)
    print(
        f"box calibration (fitted on photos): {calib}; shipped: "
        + ", ".join(f"{k} {v.box_scale}/{v.box_shift_y}" for k, v in blazeface.VARIANTS.items()),
        flush=True,
    )

    results, rows = [], []

    def record(name, boxes, cpu1, cpu_def, wall_def, photo_detect):
        crops: list[np.ndarray] = []
        ev = clip_eval(engine, frames, boxes, hog1, lin_boxes, lin_ref, crops, first_n)
        if args.sheets and crops:
            write_sheet(Path(args.sheets) / f"{name.replace(' ', '_').replace(',', '')}.png", crops)
        ph = photo_eval(engine, shots, photo_detect, enrolled)
        results.append(
            {
                "detector": name,
                "cpu_ms_1thread": round(cpu1, 1),
                "cpu_ms_default_threads": round(cpu_def, 1),
                "wall_ms_default_threads": round(wall_def, 1),
                "frames_with_any_box": sum(bool(b) for b in boxes),
                "clip": ev,
                "photos": ph,
            }
        )
        rows.append(
            [
                name,
                f"{cpu1:.1f}",
                f"{cpu_def:.1f} / {wall_def:.1f}",
                f"{ev['lin_frames_found']}/{lin_frames}",
                f"{ev['lin_frames_found_first_0_7s']}/{lin_first}",
                ev["lin_missed_by_hog_found"],
                f"{ev['other_boxes_confirmed']}/{ev['other_boxes_unconfirmed']}",
                f"{ev['lin_distance_median']} vs {ev['hog_distance_same_frames_median']}",
                f"{ev['distance_diff_median']:+.3f} / {ev['distance_diff_p90']:+.3f}"
                if ev["distance_diff_median"] is not None
                else "-",
                f"{ev['lin_within_threshold']} vs {ev['hog_within_threshold_same_frames']}",
                ev["landmarks_offset_pct_median"],
                f"{ph['faces_found']}/{ph['faces_shown']}",
                ph["probe_distance_median"],
            ]
        )
        print(f"  {name}: done", flush=True)

    for u in (0, 1):
        boxes, cpu, wall = hog[u]
        record(
            f"hog upsample {u}",
            boxes,
            cpu,
            cpu,
            wall,
            lambda f, u=u: engine.detect(f, upsample=u, max_side=1024),
        )

    for name, variant, tiles, max_yaw in CANDIDATES:
        min_score = 0.5 if "score>0.5" in name else blazeface.MIN_SCORE
        bf = BlazeFace(variant, tiles=tiles, max_yaw=max_yaw, min_score=min_score)
        bf.detect(frames[0])  # first call allocates the network's buffers
        boxes, cpu1, _ = timed(bf.detect, frames, 1)
        _, cpu_def, wall_def = timed(bf.detect, frames, cv2.getNumberOfCPUs())
        record(name, boxes, cpu1, cpu_def, wall_def, bf.detect)

    headers = [
        "detector",
        "CPU ms 1 thr",
        "CPU/wall ms dflt",
        "Lin found",
        "in 1st 0.7 s",
        "Lin HOG-missed",
        "other boxes HOG-conf/not",
        "Lin dist med (vs HOG)",
        "dist diff med/p90",
        f"<= {THRESHOLD} (vs HOG)",
        "lm68 off %",
        "photo faces",
        "probe dist med",
    ]
    print(table(rows, headers))
    for r in results:
        if r["photos"]["missed_in"]:
            print(f"{r['detector']} misses faces in: {', '.join(r['photos']['missed_in'])}")
    path = write_results(
        "bench_detectors",
        {
            "clip_frames": len(frames),
            "every": args.every,
            "lin_frames_hog_upsample1": lin_frames,
            "lin_frames_hog_upsample1_first_0_7s": lin_first,
            "threshold": THRESHOLD,
            "box_calibration_fitted": calib,
            "box_calibration_shipped": {
                k: {"scale": v.box_scale, "shift_y": v.box_shift_y}
                for k, v in blazeface.VARIANTS.items()
            },
            "detectors": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
