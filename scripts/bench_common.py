"""Shared bits of the benchmarks: fixture paths, an enrolled gallery, result files."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def fixtures_root() -> Path:
    override = os.environ.get("FACEGATE_FIXTURES")
    return Path(override) if override else (REPO.parent / "shared" / "fixtures").resolve()


def enrolled_gallery(people: list[str], *, door_cohort: bool = True, **overrides):
    """Enrol ``people`` from the fixtures into a temporary store; return (settings, gallery).

    The face engine is the one the settings describe (``FACEGATE_DETECTOR`` applies).

    ``door_cohort`` (default): the gallery carries the shipped background cohort when the
    settings turn it on, as the door's does (appliance/gallery_feed.py), so a bench measures the
    door as it runs; False: no background cohort."""
    from loguru import logger

    from appliance import store
    from appliance.enroll import enrol
    from appliance.faces import MODEL_NAME
    from appliance.match import Gallery, background_cohort
    from appliance.settings import load_settings
    from appliance.startup import make_engine

    logger.remove()
    settings = load_settings(data_dir=Path(tempfile.mkdtemp()) / "data", **overrides)
    db = store.open_db(settings.db_path)
    engine = make_engine(settings)  # FACEGATE_DETECTOR applies, as at the door
    for person in people:
        folder = fixtures_root() / "people" / person
        photos = [(str(p), p.read_bytes()) for p in sorted(folder.iterdir())]
        enrol(db, engine, settings, photos, name=person, external_id=person)
    background = background_cohort(settings.match_background_cohort) if door_cohort else None
    return settings, Gallery(store.load_gallery_rows(db, MODEL_NAME), background)


def write_results(name: str, data: dict) -> Path:
    out = REPO / "scripts" / "results"
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        **data,
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def table(rows: list[list], headers: list[str]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(headers, *cells)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
