#!/usr/bin/env python3
"""The kiosk pipeline against face_recognition's recommended webcam loop, on the fixture clip.

Both read the clip from disk as fast as they can (decoding included) with lin_manuel_miranda and
alex_lacamoire enrolled, and report: video frames consumed per second of wall time, p50/p95 ms
per processed frame, the video time of the first correct grant, and false grants.

The reference is face_recognition's facerec_from_webcam_faster example as it recommends it for
accuracy: full-size frames, every second frame, detect and encode every face, compare_faces()
against all known faces (tolerance 0.6). Its 4x-downscaled variant is run too (it finds nothing).

With ``--processes`` both are also run as whole processes, start-up included: the kiosk as
``python -m appliance run --source CLIP --once --fast`` on a fresh enrolled data folder, the
reference as a process that imports face_recognition, loads the known encodings and runs the same
loop; frames per second is then the clip's frames over the process's whole wall time.

    python scripts/bench_pipeline.py [--liveness off|motion|strict] [--repeat N] [--processes]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from bench_common import enrolled_gallery, fixtures_root, table, write_results

PEOPLE = ["lin_manuel_miranda", "alex_lacamoire"]
TARGET = "lin_manuel_miranda"


def read_clip():
    cap = cv2.VideoCapture(str(fixtures_root() / "video" / "short_hamilton_clip.mp4"))
    fps = cap.get(cv2.CAP_PROP_FPS)
    return cap, fps


def run_kiosk(settings, gallery):
    from appliance.faces import DetectorConfig, FaceEngine
    from appliance.pipeline import Pipeline
    from appliance.startup import make_liveness_check

    engine = FaceEngine(DetectorConfig(settings.detect_width, settings.detect_upsample))
    pipeline = Pipeline(settings, engine, liveness=make_liveness_check(settings))
    pipeline.set_gallery(gallery)
    cap, fps = read_clip()
    per_frame, first, false_grants, n = [], None, 0, 0
    start = time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        t0 = time.perf_counter()
        report = pipeline.process(bgr, n / fps)
        if report.processed:
            per_frame.append(time.perf_counter() - t0)
        for o in report.outcomes:
            if o.granted and o.person_name == TARGET and first is None:
                first = n / fps
            elif o.granted and o.person_name != TARGET:
                false_grants += 1
        n += 1
    wall = time.perf_counter() - start
    return n, wall, per_frame, first, false_grants


def run_reference(known, names, shrink: float):
    import face_recognition

    cap, fps = read_clip()
    per_frame, first, false_grants, n, faces_found = [], None, 0, 0, 0
    start = time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if n % 2 == 0:  # "only process every other frame of video to save time"
            t0 = time.perf_counter()
            small = cv2.resize(bgr, (0, 0), fx=shrink, fy=shrink) if shrink != 1 else bgr
            rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
            locations = face_recognition.face_locations(rgb)
            encodings = face_recognition.face_encodings(rgb, locations)
            faces_found += len(locations)
            for enc in encodings:
                matches = face_recognition.compare_faces(known, enc)
                dists = face_recognition.face_distance(known, enc)
                if True in matches:
                    who = names[int(np.argmin(dists))]
                    if who == TARGET and first is None:
                        first = n / fps
                    elif who != TARGET:
                        false_grants += 1
            per_frame.append(time.perf_counter() - t0)
        n += 1
    wall = time.perf_counter() - start
    return n, wall, per_frame, first, false_grants, faces_found


def reference_process(known_path: str) -> None:
    """The reference loop as its own process (``--processes``); prints its frame count."""
    data = np.load(known_path)
    r = run_reference(list(data["known"]), [str(n) for n in data["names"]], 1.0)
    print(f"frames {r[0]} first {r[3]} false {r[4]}", flush=True)


def whole_processes(liveness: str, repeat: int) -> list[dict]:
    """The kiosk and the reference as whole processes, start-up included (best of ``repeat``)."""
    from bench_pi_budget import PY, known_encodings, make_data_dir

    root = Path(tempfile.mkdtemp(prefix="facegate-bench-"))
    data = make_data_dir(root)
    known = known_encodings(root)
    clip = str(fixtures_root() / "video" / "short_hamilton_clip.mp4")
    kiosk = [PY, "-m", "appliance", "run", "--source", clip, "--once", "--fast"]
    ref = [PY, str(Path(__file__).resolve()), "--reference-process", str(known)]
    env = {**os.environ, "FACEGATE_DATA_DIR": str(data), "FACEGATE_LIVENESS": liveness}
    rows = []
    for name, argv in (
        (f"facegate process (liveness {liveness})", kiosk),
        ("reference process", ref),
    ):
        best = None
        for _ in range(repeat):
            start = time.perf_counter()
            out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            best = wall if best is None else min(best, wall)
        text = out.stdout + out.stderr
        grants = text.count("access_granted") if "reference" not in name else None
        rows.append({"loop": name, "wall_s": round(best, 2), "grant_lines": grants})
    cap, _ = read_clip()
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    for r in rows:
        r["frames_per_s"] = round(frames / r["wall_s"], 1)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--liveness", default=None, help="override FACEGATE_LIVENESS for the kiosk")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each; the best is kept")
    ap.add_argument("--processes", action="store_true", help="also as whole processes")
    ap.add_argument("--reference-process", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_process:
        reference_process(args.reference_process)
        return
    overrides = {"liveness": args.liveness} if args.liveness else {}
    settings, gallery = enrolled_gallery(PEOPLE, **overrides)
    known, names = [], []
    import face_recognition

    for person in PEOPLE:
        for p in sorted((fixtures_root() / "people" / person).iterdir()):
            img = face_recognition.load_image_file(str(p))
            known.append(face_recognition.face_encodings(img)[0])
            names.append(person)

    def best(fn, *a):
        runs = [fn(*a) for _ in range(args.repeat)]
        return min(runs, key=lambda r: r[1])

    k = best(run_kiosk, settings, gallery)
    r = best(run_reference, known, names, 1.0)
    r4 = run_reference(known, names, 0.25)

    def row(name, res):
        n, wall, per, first, false = res[:5]
        return {
            "loop": name,
            "frames_per_s": round(n / wall, 1),
            "p50_ms": round(float(np.percentile(per, 50)) * 1000, 1) if per else None,
            "p95_ms": round(float(np.percentile(per, 95)) * 1000, 1) if per else None,
            "processed_frames": len(per),
            "first_grant_video_s": None if first is None else round(first, 3),
            "false_grants": false,
        }

    rows = [
        row(f"facegate (liveness {settings.liveness})", k),
        row("reference, full size", r),
        row("reference, 4x smaller", r4) | {"faces_found": r4[5]},
    ]
    speedup = rows[0]["frames_per_s"] / rows[1]["frames_per_s"]
    headers = list(rows[0].keys())
    print(table([[x.get(h) for h in headers] for x in rows], headers))
    print(f"\nspeed-up over the reference: {speedup:.1f}x (target >= 3x)")
    if rows[0]["first_grant_video_s"] is not None and rows[1]["first_grant_video_s"] is not None:
        delay = rows[0]["first_grant_video_s"] - rows[1]["first_grant_video_s"]
        print(f"first grant vs reference: {delay:+.3f} s of video (target <= +0.3 s)")
    results = {"rows": rows, "speedup": round(speedup, 2)}
    if args.processes:
        procs = whole_processes(settings.liveness, args.repeat)
        print()
        print(table([list(p.values()) for p in procs], list(procs[0].keys())))
        whole = procs[0]["frames_per_s"] / procs[1]["frames_per_s"]
        print(f"\nspeed-up as whole processes, start-up included: {whole:.1f}x (target >= 3x)")
        results |= {"processes": procs, "speedup_processes": round(whole, 2)}
    path = write_results("bench_pipeline", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
