"""Decisions over a track's life on real video: one grant per track, evidence per identity."""

from __future__ import annotations

from datetime import timedelta

import cv2
import numpy as np
import pytest

from appliance import store
from appliance.faces import MODEL_NAME
from appliance.liveness import make_liveness
from appliance.match import Gallery
from appliance.pipeline import Pipeline
from appliance.settings import load_settings
from tests.appliance.conftest import copy_data, person_ids

pytestmark = pytest.mark.slow
FPS = 29.97


@pytest.fixture(scope="module")
def frames(clip_frames):
    return clip_frames[1]


def _gallery(enrolled_template, tmp_path, keep):
    settings = load_settings(data_dir=copy_data(enrolled_template[0], tmp_path / "d"))
    db = store.open_db(settings.db_path)
    for ext, pid in person_ids(settings).items():
        if ext not in keep:
            store.delete_person(db, pid)
    return Gallery(store.load_gallery_rows(db, MODEL_NAME))


def test_one_grant_per_track_however_long_the_person_stands_there(
    engine, enrolled_template, tmp_path, frames
):
    gallery = _gallery(enrolled_template, tmp_path, {"lin_manuel_miranda"})
    pipeline = Pipeline(load_settings(liveness="off", cooldown_seconds=0.3), engine)
    pipeline.set_gallery(gallery)
    grants = []
    for i in range(150, 211):  # two seconds of Lin-Manuel Miranda in view, one track
        grants += [o for o in pipeline.process(frames[i], i / FPS).outcomes if o.granted]
    assert len(grants) == 1
    assert len({o.track_id for o in grants}) == 1


def test_a_wall_clock_step_back_neither_blocks_nor_repeats_grants(
    engine, enrolled_template, tmp_path, frames
):
    gallery = _gallery(enrolled_template, tmp_path, {"lin_manuel_miranda"})
    wall = [store.utc_now()]

    def clock():  # NTP steps the clock back an hour after the first grant
        return wall[0]

    pipeline = Pipeline(load_settings(liveness="off", cooldown_seconds=1.0), engine, clock=clock)
    pipeline.set_gallery(gallery)
    grants = []
    for i in list(range(0, 21)) + list(range(84, 150)):  # he leaves the view and comes back
        out = [o for o in pipeline.process(frames[i], i / FPS).outcomes if o.granted]
        if out:
            wall[0] -= timedelta(hours=1)
        grants += out
    assert grants[0].t < 1.0  # first appearance
    assert [o for o in grants if o.t > 2.5], "the clock step blocked his second entry"
    assert len({o.track_id for o in grants}) == len(grants)  # never twice in one track


def _paste(frame: np.ndarray, photo: np.ndarray, box, i: int, rng) -> np.ndarray:
    """The photo's face held over ``box``, with a little hand jitter and JPEG noise."""
    top, right, bottom, left = box
    h = bottom - top
    scale = h / photo.shape[0] * (1 + 0.03 * np.sin(i / 7))
    p = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cy = (top + bottom) / 2 + 3 * np.sin(i / 5)
    cx = (left + right) / 2 + 4 * np.cos(i / 6)
    y0, x0 = int(cy - p.shape[0] / 2), int(cx - p.shape[1] / 2)
    out = frame.copy()
    ya, yb = max(0, y0), min(out.shape[0], y0 + p.shape[0])
    xa, xb = max(0, x0), min(out.shape[1], x0 + p.shape[1])
    out[ya:yb, xa:xb] = p[ya - y0 : yb - y0, xa - x0 : xb - x0]
    noisy = np.clip(out.astype(np.float32) + rng.normal(0, 2, out.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 75])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def test_a_live_face_does_not_lend_its_motion_to_a_photo_held_up_after_it(
    engine, enrolled_template, tmp_path, frames, people_dir
):
    """Someone not enrolled walks up (live motion), then holds up an enrolled person's photo
    in the same place: the track's earlier evidence must not open the door for the photo."""
    gallery = _gallery(enrolled_template, tmp_path, {"barack_obama", "alex_lacamoire"})
    settings = load_settings(liveness="motion")
    pipeline = Pipeline(settings, engine, liveness=make_liveness(settings))
    pipeline.set_gallery(gallery)
    photo = cv2.imread(str(people_dir / "barack_obama" / "obama.jpg"))
    (face,) = engine.detect(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB), upsample=1, max_side=1024)
    top, right, bottom, left = face
    ph = bottom - top
    crop = photo[max(0, top - ph // 4) : bottom + ph // 8, max(0, left - ph // 8) : right + ph // 8]
    rgb_switch = cv2.cvtColor(frames[150], cv2.COLOR_BGR2RGB)
    (lin_box,) = engine.detect(rgb_switch, upsample=1)
    rng = np.random.default_rng(1)
    outcomes = []
    for i in range(120, 255):
        bgr = frames[i] if i < 150 else _paste(frames[i], crop, lin_box, i, rng)
        outcomes += pipeline.process(bgr, i / FPS).outcomes
    assert not [o for o in outcomes if o.granted], outcomes
    refused = [o for o in outcomes if o.person_name == "barack_obama"]
    assert refused and {o.reason for o in refused} == {"liveness_failed"}


def test_strict_mode_asks_a_still_face_to_turn_before_refusing_it(
    engine, enrolled_template, tmp_path, frames
):
    """A face that does not move at all leaves the motion check unsure: strict mode asks for a
    head turn (LED flash, a label on the kiosk's screen) and refuses only if none comes."""
    gallery = _gallery(enrolled_template, tmp_path, {"lin_manuel_miranda"})
    settings = load_settings(liveness="strict")
    pipeline = Pipeline(settings, engine, liveness=make_liveness(settings))
    pipeline.set_gallery(gallery)
    still = frames[200]  # Lin-Manuel Miranda, frozen: only sensor noise changes
    rng = np.random.default_rng(0)
    prompts, outcomes, labels = [], [], set()
    for i in range(120):
        noisy = np.clip(still.astype(np.float32) + rng.normal(0, 2, still.shape), 0, 255)
        report = pipeline.process(noisy.astype(np.uint8), i / FPS)
        prompts += [(i / FPS, p) for p in report.prompts]
        outcomes += report.outcomes
        labels |= {label for _, label, _ in report.labels}
    assert [p for _, (_, p) in prompts] == ["turn_head"]  # asked once
    assert "please turn your head" in labels
    assert not [o for o in outcomes if o.granted]
    assert [o.reason for o in outcomes] == ["liveness_failed"]
    assert prompts[0][0] < outcomes[0].t  # asked before refused
