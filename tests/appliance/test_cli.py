"""The command line as a user runs it: exit codes, messages and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.appliance.conftest import copy_data
from tests.conftest import REPO_ROOT, run_cli


@pytest.fixture
def env(enrolled_template, tmp_path):
    data = copy_data(enrolled_template[0], tmp_path / "data")
    return {"FACEGATE_DATA_DIR": str(data), "FACEGATE_PIN_FACTORY": "mock"}


@pytest.fixture
def empty_env(tmp_path):
    return {"FACEGATE_DATA_DIR": str(tmp_path / "empty"), "FACEGATE_PIN_FACTORY": "mock"}


def test_enroll_prints_the_person_id_and_refuses_bad_files(empty_env, people_dir, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    r = run_cli(
        "enroll",
        "--name",
        "Rose Leslie",
        "--external-id",
        "E-7",
        str(people_dir / "rose_leslie"),
        str(bad),
        env=empty_env,
    )
    assert r.returncode == 3, r.stderr  # some accepted, some refused
    person_id = r.stdout.strip().splitlines()[-1]
    assert len(person_id) == 36
    assert "notes.jpg" in r.stderr and "not a readable image" in r.stderr
    shown = run_cli("persons", "show", "E-7", "--json", env=empty_env)  # by external id
    person = json.loads(shown.stdout)
    assert person["id"] == person_id
    assert person["name"] == "Rose Leslie" and len(person["faces"]) == 2
    # the same photos under a different name: skipped, and the existing name is kept
    again = run_cli(
        "enroll",
        "--name",
        "Rose",
        "--external-id",
        "E-7",
        str(people_dir / "rose_leslie"),
        env=empty_env,
    )
    assert again.returncode == 0, again.stderr  # already enrolled counts as accepted
    assert "the existing name is kept" in again.stderr and "--rename" in again.stderr
    assert again.stderr.count("already enrolled for this person, skipped") == 2
    renamed = run_cli(
        "enroll",
        "--name",
        "Rose L.",
        "--external-id",
        "E-7",
        "--rename",
        str(people_dir / "rose_leslie"),
        env=empty_env,
    )
    assert renamed.returncode == 0, renamed.stderr
    person = json.loads(run_cli("persons", "show", "E-7", "--json", env=empty_env).stdout)
    assert person["name"] == "Rose L." and len(person["faces"]) == 2


def test_enroll_with_nothing_usable_exits_non_zero(empty_env, probes_dir):
    r = run_cli(
        "enroll", "--name", "Group", str(probes_dir / "two_faces__two_people.jpg"), env=empty_env
    )
    assert r.returncode == 1
    assert "two_faces__two_people.jpg" in r.stderr and "more than one face" in r.stderr
    listed = run_cli("persons", "list", "--json", env=empty_env)
    assert json.loads(listed.stdout) == []


def test_enroll_folder_summary(empty_env, people_dir):
    r = run_cli("enroll-folder", str(people_dir), env=empty_env)
    assert r.returncode == 0, r.stderr
    assert "12 face(s) enrolled for 6 person(s)" in r.stdout
    for person in ("barack_obama", "rose_leslie"):
        assert person in r.stdout
    # run twice: nothing changes, and that is a success
    again = run_cli("enroll-folder", str(people_dir), env=empty_env)
    assert again.returncode == 0, again.stderr
    assert "0 face(s) enrolled" in again.stdout
    persons = json.loads(run_cli("persons", "list", "--json", env=empty_env).stdout)
    assert len(persons) == 6 and sum(p["face_count"] for p in persons) == 12


def test_enroll_folder_names_what_it_skipped_and_who_got_no_face(empty_env, people_dir, tmp_path):
    import shutil

    root = tmp_path / "staff"
    shutil.copytree(people_dir / "kit_harington", root / "kit")
    (root / "nobody").mkdir()  # an empty sub-folder
    (root / "group").mkdir()
    shutil.copy(people_dir.parent / "probes" / "two_faces__two_people.jpg", root / "group")
    shutil.copy(people_dir / "kit_harington" / sorted(os.listdir(root / "kit"))[0], root)
    r = run_cli("enroll-folder", str(root), env=empty_env)
    assert r.returncode == 3, r.stderr  # someone got no face
    assert "empty sub-folder(s), nobody enrolled: nobody" in r.stderr
    assert "no face enrolled for: group" in r.stderr
    assert "skipped 1 loose file(s)" in r.stderr
    persons = json.loads(run_cli("persons", "list", "--json", env=empty_env).stdout)
    assert [p["name"] for p in persons] == ["kit"]  # nobody is left without a face


def test_identify_json(env, probes_dir):
    r = run_cli(
        "identify", str(probes_dir / "two_faces__kit_harington_rose_leslie.jpg"), "--json", env=env
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # a still photo says nothing about liveness: the door may refuse what this grants
    assert out["liveness_judged"] is False and "not judged from one photo" in out["note"]
    faces = out["faces"]
    assert sorted(f["person_name"] for f in faces) == ["kit_harington", "rose_leslie"]
    for f in faces:
        assert set(f) == {
            "box",
            "person_id",
            "person_name",
            "distance",
            "margin",
            "decision",
            "reason",
        }
        assert len(f["box"]) == 4 and f["decision"] == "access_granted" and f["reason"] is None
        assert 0 < f["distance"] < 0.55


def test_identify_unknown_and_disabled(env, probes_dir):
    obama = str(probes_dir / "barack_obama__1.jpg")
    person_id = json.loads(run_cli("identify", obama, "--json", env=env).stdout)["faces"][0][
        "person_id"
    ]
    assert run_cli("persons", "disable", person_id, env=env).returncode == 0
    face = json.loads(run_cli("identify", obama, "--json", env=env).stdout)["faces"][0]
    assert face["decision"] == "access_denied" and face["reason"] == "disabled"
    assert run_cli("persons", "remove", person_id, "--json", env=env).returncode == 0
    face = json.loads(run_cli("identify", obama, "--json", env=env).stdout)["faces"][0]
    assert face["person_id"] is None and face["reason"] == "unknown_face"


def test_identify_photo_without_face_gives_empty_list(env, tmp_path):
    import numpy as np
    from PIL import Image

    path = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 300, 3), 180, np.uint8)).save(path)
    r = run_cli("identify", str(path), "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["faces"] == []


def test_identify_table_says_liveness_is_not_judged(env, probes_dir):
    r = run_cli("identify", str(probes_dir / "kit_harington__1.jpg"), env=env)
    assert r.returncode == 0, r.stderr
    assert "access_granted" in r.stdout
    assert "liveness is not judged from one photo" in r.stdout


def test_persons_remove_deletes_faces(env):
    persons = json.loads(run_cli("persons", "list", "--json", env=env).stdout)
    target = next(p for p in persons if p["external_id"] == "joe_biden")
    out = json.loads(run_cli("persons", "remove", target["id"], "--json", env=env).stdout)
    assert out["faces_deleted"] == 2
    assert run_cli("persons", "show", target["id"], env=env).returncode == 1
    left = json.loads(run_cli("persons", "list", "--json", env=env).stdout)
    assert target["id"] not in {p["id"] for p in left}


def _on_a_terminal(args: list[str], env: dict, answer: bytes) -> subprocess.CompletedProcess:
    """Run the CLI with a terminal as stdin (a pseudo-terminal), typing ``answer``."""
    master, slave = os.openpty()
    full = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    full.update(env, PYTHONPATH=str(REPO_ROOT))
    try:
        os.write(master, answer)
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            cwd=REPO_ROOT,
            env=full,
            stdin=slave,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(master)
        os.close(slave)


def test_persons_remove_asks_on_a_terminal(env):
    refused = _on_a_terminal(["persons", "remove", "kit_harington"], env, b"n\n")
    assert refused.returncode == 1 and "nothing removed" in refused.stderr
    assert "Remove kit_harington" in refused.stdout and "2 face(s)" in refused.stdout
    assert run_cli("persons", "show", "kit_harington", env=env).returncode == 0
    done = _on_a_terminal(["persons", "remove", "kit_harington", "--yes"], env, b"")
    assert done.returncode == 0 and "removed" in done.stdout
    assert run_cli("persons", "disable", "kit_harington", env=env).returncode == 1


def test_run_without_camera_says_how_to_name_a_source(empty_env, tmp_path):
    r = run_cli("run", "--source", str(tmp_path / "missing.mp4"), env=empty_env)
    assert r.returncode == 2
    assert "--source" in r.stderr


def test_run_clip_then_events_json(env, clip_path):
    env = {**env, "FACEGATE_LIVENESS": "off"}
    r = run_cli("run", "--source", str(clip_path), "--once", "--fast", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    events = json.loads(run_cli("events", "--json", env=env).stdout)
    assert events, "no decisions logged"
    for e in events:
        assert {
            "id",
            "ts",
            "door",
            "kind",
            "person_id",
            "person_name",
            "distance",
            "reason",
        } <= set(e)
        assert e["ts"].endswith("+00:00") and len(e["id"]) == 36
    assert [e["ts"] for e in events] == sorted((e["ts"] for e in events), reverse=True)
    # every person is enrolled here, so Lin-Manuel Miranda is the only grant
    assert {e["person_name"] for e in events if e["kind"] == "access_granted"} == {
        "lin_manuel_miranda"
    }
    since = events[0]["ts"]
    recent = json.loads(run_cli("events", "--since", since, "--json", env=env).stdout)
    assert [e["id"] for e in recent] == [events[0]["id"]]
    bad = run_cli("events", "--since", "yesterday", env=env)
    assert bad.returncode == 2 and "--since" in bad.stderr
    # before year 1 in UTC: a clear usage error, not an OverflowError traceback
    edge = run_cli("events", "--since", "0001-01-01T00:00:00+14:00", env=env)
    assert edge.returncode == 2 and "out of range" in edge.stderr
    assert "Traceback" not in edge.stderr


def test_bad_setting_is_named_at_start(empty_env):
    r = run_cli("persons", "list", env={**empty_env, "FACEGATE_MATCH_THRESHOLD": "high"})
    assert r.returncode == 2 and "FACEGATE_MATCH_THRESHOLD" in r.stderr


def test_run_on_a_machine_without_camera(empty_env):
    import glob

    if glob.glob("/dev/video*"):
        pytest.skip("this machine has a camera")
    r = run_cli("run", env=empty_env)
    assert r.returncode == 2
    assert "no camera found" in r.stderr and "--source" in r.stderr


def test_run_refuses_a_file_that_is_not_a_video(empty_env, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("hello")
    r = run_cli("run", "--source", str(notes), "--once", env=empty_env)
    assert r.returncode == 2 and "not a video file" in r.stderr
    assert "moov atom" not in r.stderr  # ffmpeg's own noise is not printed: ours says it all
    r = run_cli("run", "--source", str(tmp_path / "nope.mp4"), env=empty_env)
    assert r.returncode == 2 and "nope.mp4: file not found" in r.stderr
    r = run_cli("run", "--source", "/dev/video-facegate-missing", env=empty_env)
    assert r.returncode == 2 and "no such device" in r.stderr  # at once, as for index 0
    empty = tmp_path / "no_images"  # (tmp_path / "empty" is the data folder)
    empty.mkdir()
    r = run_cli("run", "--source", str(empty), "--once", env=empty_env)
    assert r.returncode == 2 and "holds no images" in r.stderr
