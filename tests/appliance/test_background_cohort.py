"""The shipped background cohort: usable embeddings of people who are not the test people."""

from __future__ import annotations

import numpy as np
import pytest

from appliance import store
from appliance.faces import MODEL_NAME
from appliance.match import BACKGROUND_COHORT_PATH, Gallery, load_background_cohort
from appliance.settings import load_settings


def test_shipped_cohort_is_enough_people_and_none_of_the_fixture_people(enrolled_template):
    background = load_background_cohort()
    assert background.shape[1] == 128 and background.shape[0] >= 5  # a full cohort of 5
    db = store.open_db(load_settings(data_dir=enrolled_template[0]).db_path)
    gallery = Gallery(store.load_gallery_rows(db, MODEL_NAME), background)
    db.conn.close()
    # every fixture person is farther than a same-person distance from every background face,
    # so the door's cohort never contains someone the tests (or the bench) count as enrolled
    nearest = min(float(gallery.person_distances(b).min()) for b in background)
    assert nearest > 0.5
    # and no two background faces are the same person either
    d = np.linalg.norm(background[:, None] - background[None], axis=2)
    assert d[np.triu_indices(len(background), 1)].min() > 0.3


def test_shipped_cohort_comes_with_its_origin_and_licence():
    readme = (BACKGROUND_COHORT_PATH.parent / "README.md").read_text()
    assert "MIT" in readme and "scripts/build_background_cohort.py" in readme


def test_a_broken_cohort_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "cohort.npy"
    np.save(bad, np.zeros((3, 64), np.float32))
    with pytest.raises(ValueError, match="128"):
        load_background_cohort(bad)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="cannot be read"):
        load_background_cohort(tmp_path / "junk.npy")
