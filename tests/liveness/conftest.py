"""Landmark sequences shared by the liveness tests: the real clip and attack videos.

Detection and landmarks are the expensive part (HOG on every frame), so each video is processed
once per session. Faces in the clip are 45-110 px, so detection runs with HOG upsampling 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.liveness.attacks import AttackSpec, FaceSequence, attack_sequence, video_sequences

#: The attack videos the tests present: both motions, a small and a large face, a flexed print.
ATTACKS = {
    "rigid_small": AttackSpec(kind="rigid", face_px=55, seconds=2.5, seed=11),
    "rigid_large": AttackSpec(kind="rigid", face_px=105, seconds=2.5, seed=12),
    "perspective_small": AttackSpec(kind="perspective", face_px=60, seconds=2.5, seed=13),
    "perspective_large": AttackSpec(kind="perspective", face_px=100, seconds=2.5, seed=14),
    "flexed_print": AttackSpec(kind="perspective", face_px=80, seconds=2.5, seed=15, bend_deg=60),
}


@pytest.fixture(scope="session")
def lin_photo(people_dir: Path) -> Path:
    return people_dir / "lin_manuel_miranda" / "lin-manuel-miranda.png"


@pytest.fixture(scope="session")
def clip_sequences(engine, clip_path: Path) -> list[FaceSequence]:
    """Every face track of the fixture clip (detected, landmarked, associated by box overlap)."""
    return video_sequences(engine, clip_path)


@pytest.fixture(scope="session")
def lin_sequence(engine, clip_sequences, lin_photo) -> FaceSequence:
    """The clip's longest track of Lin-Manuel Miranda (identified against his enrolment photo)."""
    import face_recognition

    photo = face_recognition.load_image_file(str(lin_photo))
    ref = engine.encode(photo, engine.detect(photo, max_side=1024))[0]
    his = [s for s in clip_sequences if s.median_distance(engine, ref) < 0.6]
    assert his, "Lin-Manuel Miranda not found in the clip"
    return max(his, key=len)


@pytest.fixture(scope="session")
def attacks(engine, lin_photo):
    """``attacks(name)``: an attack video of Lin-Manuel's enrolment photo, as the detector and
    landmark model see it; each one is made once per session."""
    cache: dict[str, FaceSequence] = {}

    def get(name: str) -> FaceSequence:
        if name not in cache:
            cache[name] = attack_sequence(engine, lin_photo, ATTACKS[name])
        return cache[name]

    return get


@pytest.fixture(scope="session")
def lin_landmarks(engine, lin_photo) -> np.ndarray:
    """dlib landmarks of the enrolment photo (a real face for the geometry tests)."""
    import face_recognition

    photo = face_recognition.load_image_file(str(lin_photo))
    return engine.landmarks(photo, engine.detect(photo, max_side=1024))[0]


@pytest.fixture(scope="session")
def screen_replay(engine, clip_path) -> FaceSequence:
    """A phone playing the real clip (Lin-Manuel talking), held up to the camera by hand."""
    from tests.liveness.attacks import face_sequences, screen_replay_frames, video_frames

    frames = list(video_frames(clip_path))[150:210]
    spec = AttackSpec(kind="perspective", face_px=110, seconds=2.0, seed=42, max_tilt_deg=25)
    seqs = face_sequences(engine, screen_replay_frames(frames, (46, 295, 136, 205), spec))
    assert seqs, "the replayed face was not tracked"
    return max(seqs, key=len)
