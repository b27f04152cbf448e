#!/usr/bin/env python3
"""1:N matching at 1k, 10k and 100k enrolled faces: p50/p95 per query and the gallery's memory.

Galleries are synthetic (random unit-norm 128-d embeddings, 2 faces per person, like the
enrolment fixtures) built through the real store path; queries are real-looking (a stored face
plus noise). Each size is measured without and with the shipped background cohort (the
kiosk's default), at the settings' threshold and cohort ratio. Target: p95 under 5 ms at 100k
faces.

    python scripts/bench_match.py [--queries N]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from bench_common import table, write_results

from appliance.match import Gallery, load_background_cohort, use_one_blas_thread
from appliance.settings import Settings
from appliance.store import GalleryRows


def make_rows(n_faces: int, rng) -> GalleryRows:
    emb = rng.normal(size=(n_faces, 128)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = [f"p{i // 2:07d}" for i in range(n_faces)]
    persons = {pid: {"id": pid} for pid in set(ids)}
    return GalleryRows(ids, emb, persons, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args()
    use_one_blas_thread()  # as the kiosk does
    rng = np.random.default_rng(7)
    defaults = Settings.model_fields
    threshold = defaults["match_threshold"].default
    ratio = defaults["match_cohort_ratio"].default
    shipped = load_background_cohort()
    rows = []
    for n, background in [(n, bg) for n in (1_000, 10_000, 100_000) for bg in (None, shipped)]:
        data = make_rows(n, np.random.default_rng(n))
        tracemalloc.start()
        t0 = time.perf_counter()
        gallery = Gallery(data, background)
        build_ms = (time.perf_counter() - t0) * 1000
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        idx = rng.integers(0, n, size=args.queries)
        queries = data.embeddings[idx] + rng.normal(scale=0.02, size=(args.queries, 128)).astype(
            np.float32
        )
        gallery.match(queries[0], threshold, ratio)  # warm-up
        times, correct = [], 0
        for q, i in zip(queries, idx):
            t0 = time.perf_counter()
            m = gallery.match(q, threshold, ratio)
            times.append((time.perf_counter() - t0) * 1000)
            correct += m.person_id == data.person_ids[i]
        rows.append(
            {
                "faces": n,
                "background": gallery.background_size,
                "p50_ms": round(float(np.percentile(times, 50)), 3),
                "p95_ms": round(float(np.percentile(times, 95)), 3),
                "build_ms": round(build_ms, 1),
                "gallery_mb": round(gallery._emb.nbytes / 2**20, 1),
                "build_peak_mb": round(peak / 2**20, 1),
                "correct": f"{correct}/{args.queries}",
            }
        )
    headers = list(rows[0])
    print(table([[r[h] for h in headers] for r in rows], headers))
    print(f"\np95 at 100k faces: {rows[-1]['p95_ms']} ms (target < 5 ms)")
    print(f"wrote {write_results('bench_match', {'rows': rows})}")


if __name__ == "__main__":
    main()
