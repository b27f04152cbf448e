#!/usr/bin/env python3
"""dlib alone, faceres alone, both agreeing, and a fused score, on labelled folders.

Same split as ``bench_recognition.py`` (every second identity enrolled with its first photo,
every other photo a probe), single photos, margin 0.08 on dlib. Needs the ONNX file made by
``scripts/convert_faceres.py``. Reports, per set and setting, genuine photos accepted as
themselves and false accepts (strangers and wrong enrolled people), and faceres' cost per face.

    python scripts/bench_second_model.py --onnx faceres.onnx SET [SET ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_common import REPO, table, write_results
from bench_recognition import identities, photo_bytes
from loguru import logger

from appliance.enroll import load_photo
from appliance.faces import FaceEngine
from appliance.second_model import SecondModel

MARGIN = 0.08


def embed_set(engine, second, root: Path, min_side: int, times: list[float]):
    out = {}
    for name, files in identities(root).items():
        faces = []
        for f in files:
            rgb = load_photo(photo_bytes(f, min_side), str(f))
            boxes = engine.detect(rgb, upsample=1, max_side=1024)
            if not boxes:
                continue
            box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            d = engine.encode(rgb, [box])[0]
            t = time.perf_counter()
            s = second.embed(rgb, box)
            times.append(time.perf_counter() - t)
            faces.append((d, s))
        if faces:
            out[name] = faces
    return out


def probe_rows(faces: dict) -> list[tuple]:
    """Per probe: (genuine, dlib best is right, dlib d, dlib margin, faceres d to dlib's best,
    faceres best is right, faceres d, faceres margin, both name the same person)."""
    names = sorted(faces)
    enrolled = names[0::2]
    rows = []
    for n in names:
        probes = faces[n][1:] if n in enrolled else faces[n]
        for d, s in probes:
            dd = np.array([np.linalg.norm(faces[m][0][0] - d) for m in enrolled])
            sd = np.array([1.0 - float(faces[m][0][1] @ s) for m in enrolled])
            o, so = np.argsort(dd), np.argsort(sd)
            b, sb = int(o[0]), int(so[0])
            rows.append(
                (
                    n in enrolled,
                    enrolled[b] == n,
                    dd[b],
                    dd[o[1]] - dd[b],
                    sd[b],
                    enrolled[sb] == n,
                    sd[sb],
                    sd[so[1]] - sd[sb],
                    b == sb,
                )
            )
    return rows


def count(rows, accept) -> tuple[int, int, int]:
    genuine = sum(1 for r in rows if r[0])
    ok = sum(1 for r in rows if r[0] and r[1] and accept(r))
    false = sum(1 for r in rows if not (r[0] and r[1]) and accept(r))
    return ok, genuine, false


SETTINGS = {
    "dlib 0.55": lambda r: r[2] <= 0.55 and r[3] >= MARGIN,
    "dlib 0.42": lambda r: r[2] <= 0.42 and r[3] >= MARGIN,
    "faceres 0.30": lambda r: r[6] <= 0.30 and r[7] >= 0.05,
    "both 0.55 & 0.35": lambda r: r[2] <= 0.55 and r[3] >= MARGIN and r[8] and r[4] <= 0.35,
    "both 0.55 & 0.40": lambda r: r[2] <= 0.55 and r[3] >= MARGIN and r[8] and r[4] <= 0.40,
    "fused <= 0.85": lambda r: r[3] >= MARGIN and r[8] and (r[2] / 0.55 + r[4] / 0.40) <= 1.7,
    "fused <= 0.90": lambda r: r[3] >= MARGIN and r[8] and (r[2] / 0.55 + r[4] / 0.40) <= 1.8,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--onnx", type=Path, required=True)
    ap.add_argument("--min-side", type=int, default=400)
    args = ap.parse_args()
    logger.remove()
    engine, second = FaceEngine(), SecondModel(args.onnx)
    times: list[float] = []
    results, rows_out = {}, []
    for root in args.sets:
        rows = probe_rows(embed_set(engine, second, root, args.min_side, times))
        results[str(root)] = {}
        for name, accept in SETTINGS.items():
            ok, n, false = count(rows, accept)
            results[str(root)][name] = {"genuine_accepted": ok, "genuine": n, "false": false}
            rows_out.append([root.name, name, f"{ok}/{n} ({100 * ok / max(n, 1):.0f}%)", false])
    print(table(rows_out, ["set", "setting", "genuine accepted", "false accepts"]))
    ms = 1000 * float(np.median(times)) if times else float("nan")
    print(f"faceres: {ms:.0f} ms per face (median, this machine, chip + forward)")
    path = write_results("bench_second_model", {"sets": results, "faceres_ms_median": ms})
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
