#!/usr/bin/env python3
"""The kiosk under a Raspberry-Pi-class CPU budget: real processes, real-speed clip, CPU quota.

Each run is a whole process (``python -m appliance run --source CLIP --once``, no ``--fast``, a
fresh temporary data folder with lin_manuel_miranda and alex_lacamoire enrolled from the
fixtures) placed in a cgroup v1 CPU quota (``/sys/fs/cgroup/cpu/NAME``: ``cpu.cfs_quota_us`` of
``cpu.cfs_period_us``) before it runs any Python, so start-up pays the same budget. Budgets: 100,
45, 25 and 15 % of one core; the kiosk with liveness off and motion, and face_recognition's own
webcam loop (a reader thread keeping only the newest frame, full-size frames, every face
detected, encoded and compared at tolerance 0.6) fed the same clip the same way.

Scenarios (``--scenarios``): ``clip``, the fixture clip from its first frame (Lin-Manuel Miranda
is acceptable to the door only in its first 0.13 s, then gone from 0.67 s to 2.70 s:
scripts/clip_windows.py shows the per-frame verdicts, and the bench prints its windows); and
``walk-in``, the same footage from 2.70 s (he walks into view at 2.74 s and stays until 7.0 s), a
person arriving at a door and staying, run for the loops of ``--walk-in-loops``. The cut is
lossless (raw RGBA frames in Matroska, written with OpenCV's bundled FFmpeg and checked to decode
to the very pixels of the original frames; it decodes at less CPU than the original H.264, while
FFV1, also lossless, costs about 12 times more: 12 % of a core at 30 fps would distort the small
budgets). Walk-in rows also give the time to open from the face's first appearance.

Per run it reports: time to the first grant of Lin-Manuel Miranda from the kiosk's "running"
line and from the start of playback, false grants (anyone else granted), frames processed, CPU
seconds per second of video with a face in view (the fixture clip) and with an empty scene (a
still frame of the clip with its faces blurred away, plus sensor noise), the start-up time from
process start to the first frame deciding, and the load average (the machine is shared: a quota
caps the CPU a run may use, and the quota's group gets the largest CPU weight so that it receives
its quota in spite of the neighbours; contention can still only make figures worse).

One core of a Pi 4 runs code like dlib's at very roughly 15-25 % of one core of this machine, a
Pi 5 at roughly 40-50 %: this is an emulation until it is run on a Pi.

    python scripts/bench_pi_budget.py [--budgets 100,45,25,15] [--repeat N] [--skip-empty]
        [--scenarios clip,walk-in] [--walk-in-loops kiosk-motion,reference]

Needs root (to make cgroups); says so and stops when the machine does not allow it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import clip_windows
from bench_common import REPO, fixtures_root, table, write_results

PEOPLE = ["lin_manuel_miranda", "alex_lacamoire"]
TARGET = "lin_manuel_miranda"
CGROUP_ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000
SHARES = 262_144  # cgroup v1's largest cpu.shares
PY = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").exists() else sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

WALK_IN_START_S = 2.70  # the clip is empty from 0.67 s; Lin walks in at 2.74 s and stays to 7.0 s
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})")


# --- cgroup --------------------------------------------------------------------------------------


class CpuQuota:
    """A cgroup v1 CPU quota of ``percent`` of one core; processes join it through ``tasks``."""

    def __init__(self, name: str, percent: float) -> None:
        self.path = CGROUP_ROOT / name
        self.percent = percent

    def __enter__(self) -> CpuQuota:
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * self.percent / 100)))
        # the machine is shared: the highest weight makes the run get its whole quota whenever
        # it can use it, so the quota, not the neighbours, is what limits it
        (self.path / "cpu.shares").write_text(str(SHARES))
        return self

    def __exit__(self, *exc) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)  # the last task is still leaving

    def throttled_s(self) -> float:
        for line in (self.path / "cpu.stat").read_text().splitlines():
            if line.startswith("throttled_time"):
                return int(line.split()[1]) / 1e9
        return 0.0


def cgroups_allowed() -> str | None:
    """None when quotas can be made here, else why not."""
    if not CGROUP_ROOT.is_dir():
        return f"{CGROUP_ROOT} does not exist (no cgroup v1 cpu controller mounted)"
    probe = CGROUP_ROOT / f"facegate-probe-{os.getpid()}"
    try:
        probe.mkdir()
        (probe / "cpu.cfs_quota_us").write_text("50000")
        probe.rmdir()
    except OSError as exc:
        return f"cannot make a CPU quota under {CGROUP_ROOT}: {exc} (needs root)"
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


# --- inputs --------------------------------------------------------------------------------------


def clip_path() -> Path:
    return fixtures_root() / "video" / "short_hamilton_clip.mp4"


def make_empty_scene(out: Path, seconds: float = 5.0) -> Path:
    """A still stage with nobody in it: the clip's first frame with every face blurred away
    (boxes from HOG on the whole clip), plus per-frame sensor noise, at the clip's frame rate."""
    import cv2
    import numpy as np

    from appliance.faces import FaceEngine

    cap = cv2.VideoCapture(str(clip_path()))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    ok, base = cap.read()
    engine = FaceEngine()
    boxes = []
    n, frame = 0, base
    while ok:
        if n % 3 == 0:
            boxes += engine.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), upsample=1)
        ok, frame = cap.read()
        n += 1
    cap.release()
    img = base.copy()
    blurred = cv2.GaussianBlur(img, (0, 0), 25)
    for top, right, bottom, left in boxes:
        h, w = bottom - top, right - left
        y0, y1 = max(0, top - h // 2), min(img.shape[0], bottom + h)
        x0, x1 = max(0, left - w // 2), min(img.shape[1], right + w // 2)
        img[y0:y1, x0:x1] = blurred[y0:y1, x0:x1]
    if engine.detect(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), upsample=2):
        img = blurred  # faces the clip never showed clearly: blur the whole stage instead
    writer = cv2.VideoWriter(
        str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (img.shape[1], img.shape[0])
    )
    rng = np.random.default_rng(1)
    for _ in range(int(seconds * fps)):
        noise = rng.normal(0, 2.0, img.shape)
        writer.write(np.clip(img + noise, 0, 255).astype(np.uint8))
    writer.release()
    return out


def make_walk_in(out: Path, start_s: float) -> tuple[Path, int, float]:
    """The clip from its first frame at or after ``start_s`` to its end, cut losslessly: raw RGBA
    frames in Matroska (no ffmpeg binary here; OpenCV's FFmpeg writes it), checked frame by frame
    to decode to exactly the original's decoded pixels. Returns (path, first frame, fps)."""
    import cv2
    import numpy as np

    src = cv2.VideoCapture(str(clip_path()))
    fps = src.get(cv2.CAP_PROP_FPS) or 30.0
    first = math.ceil(start_s * fps - 1e-6)
    ok, frame = src.read()
    writer = cv2.VideoWriter(
        str(out), cv2.VideoWriter_fourcc(*"RGBA"), fps, (frame.shape[1], frame.shape[0])
    )
    if not writer.isOpened():
        raise SystemExit("cannot run the walk-in scenario: OpenCV cannot write raw RGBA video")
    n = written = 0
    while ok:
        if n >= first:
            writer.write(frame)
            written += 1
        ok, frame = src.read()
        n += 1
    writer.release()
    src.release()
    # the check: both decoded again, side by side
    src, cut = cv2.VideoCapture(str(clip_path())), cv2.VideoCapture(str(out))
    for _ in range(first):
        src.grab()
    same = 0
    while True:
        ok_a, a = src.read()
        ok_b, b = cut.read()
        if not ok_a or not ok_b:
            break
        if not np.array_equal(a, b):
            break
        same += 1
    src.release()
    cut.release()
    if same != written or ok_b:
        raise SystemExit(
            f"walk-in cut {out} is not the original's pixels ({same}/{written} frames)"
        )
    return out, first, fps


def make_data_dir(root: Path) -> Path:
    """A fresh data folder with the two people enrolled through the real CLI."""
    data = root / "data"
    env = {**os.environ, "FACEGATE_DATA_DIR": str(data)}
    for person in PEOPLE:
        subprocess.run(
            [
                PY,
                "-m",
                "appliance",
                "enroll",
                "--name",
                person,
                "--external-id",
                person,
                str(fixtures_root() / "people" / person),
            ],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
    return data


def known_encodings(root: Path) -> Path:
    """The reference loop's known faces, encoded once here the way its example does."""
    import face_recognition
    import numpy as np

    known, names = [], []
    for person in PEOPLE:
        for p in sorted((fixtures_root() / "people" / person).iterdir()):
            img = face_recognition.load_image_file(str(p))
            known.append(face_recognition.face_encodings(img)[0])
            names.append(person)
    path = root / "known.npz"
    np.savez(path, known=np.array(known), names=np.array(names))
    return path


# --- the reference loop (runs as its own process) ----------------------------------------------


def reference_loop(clip: str, known_path: str) -> None:
    """face_recognition's webcam example, fed by a reader thread that keeps the newest frame of
    the clip played at its own frame rate. Prints timestamped lines the bench parses."""
    t_start = time.time()
    import cv2
    import face_recognition
    import numpy as np

    data = np.load(known_path)
    known, names = list(data["known"]), [str(n) for n in data["names"]]

    def say(msg: str) -> None:
        print(f"{datetime.now():%Y-%m-%d %H:%M:%S.%f}"[:-3] + " | " + msg, flush=True)

    say(f"running (imports {time.time() - t_start:.2f} s)")
    newest: list = [None]
    done = threading.Event()
    cond = threading.Condition()
    read = [0]

    def reader() -> None:
        cap = cv2.VideoCapture(clip)
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        say("source opened")
        start = time.monotonic()
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            time.sleep(max(0.0, start + i / fps - time.monotonic()))
            with cond:
                newest[0] = (i / fps, bgr)
                cond.notify()
            read[0] += 1
            i += 1
        done.set()
        with cond:
            cond.notify()

    threading.Thread(target=reader, daemon=True).start()
    processed, first = 0, True
    while True:
        with cond:
            while newest[0] is None and not done.is_set():
                cond.wait(0.5)
            item, newest[0] = newest[0], None
        if item is None:
            break
        t, bgr = item
        if first:
            say("deciding")
            first = False
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        locations = face_recognition.face_locations(rgb)
        encodings = face_recognition.face_encodings(rgb, locations)
        processed += 1
        for enc in encodings:
            matches = face_recognition.compare_faces(known, enc, tolerance=0.6)
            if True in matches:
                who = names[int(np.argmin(face_recognition.face_distance(known, enc)))]
                say(f"access_granted {who}")
    say(f"stopped: {read[0]} frames read, {processed} processed")


# --- one run -------------------------------------------------------------------------------------


def _parse_time(line: str) -> float | None:
    m = LOG_TIME.match(line)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def run_one(loop: str, budget: float, clip: Path, data: Path, known: Path) -> dict:
    """Run one process under ``budget`` % of a core and parse what it logged."""
    if loop == "reference":
        argv = [PY, str(Path(__file__).resolve()), "--reference-loop", str(clip), str(known)]
        env = dict(os.environ)
    else:
        argv = [PY, "-m", "appliance", "run", "--source", str(clip), "--once"]
        env = {
            **os.environ,
            "FACEGATE_DATA_DIR": str(data),
            "FACEGATE_LIVENESS": loop.split("-", 1)[1],
            "FACEGATE_LOG_LEVEL": "INFO",
        }
    name = f"facegate-bench-{os.getpid()}"
    load_before = os.getloadavg()[0]
    with CpuQuota(name, budget) as quota:
        tasks = quota.path / "tasks"
        # the shell joins the quota, then becomes python: start-up runs under the budget too
        t_spawn = time.time()
        proc = subprocess.Popen(
            ["sh", "-c", f'echo $$ > {tasks} && exec "$@"', "sh", *argv],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        times: dict[str, float] = {}
        grants: list[tuple[float, str]] = []
        cpu_at_play = None
        counts = ""
        for line in proc.stdout:  # type: ignore[union-attr]
            t = _parse_time(line)
            if t is None:
                continue
            if " running" in line and "running" not in times:
                times["running"] = t
            elif "source" in line and "opened" in line and "play" not in times:
                times["play"] = t
                cpu_at_play = cpu_seconds(proc.pid)
            elif "deciding" in line and "deciding" not in times:
                times["deciding"] = t
            elif "access granted to " in line:
                # the kiosk's door line names the person ("access granted to NAME (uuid)"); its
                # event line ("access_granted track=.. person_id=uuid") has only the uuid
                grants.append((t, line.split("access granted to ", 1)[1].split()[0]))
            elif loop == "reference" and "| access_granted " in line:
                grants.append((t, line.split("| access_granted ", 1)[1].split()[0]))
            elif "stopped" in line and "frames" in line:
                counts = line.split("stopped:", 1)[1].strip() if "stopped:" in line else ""
        _, status, usage = os.wait4(proc.pid, 0)
        throttled = quota.throttled_s()
    cpu_total = usage.ru_utime + usage.ru_stime
    first = next((t for t, who in grants if who == TARGET), None)
    nums = [int(x) for x in re.findall(r"(\d+) (?:frames read|processed)", counts)]

    def since(key: str) -> float | None:
        return None if first is None or key not in times else round(first - times[key], 3)

    return {
        "loop": loop,
        "budget_pct": budget,
        "clip": clip.name,
        "exit": os.waitstatus_to_exitcode(status),
        "open_after_running_s": since("running"),
        "open_after_playback_s": since("play"),
        "false_grants": sum(1 for _, who in grants if who != TARGET),
        "frames_read": nums[0] if nums else None,
        "frames_processed": nums[-1] if len(nums) > 1 else None,
        "startup_to_deciding_s": (
            round(times["deciding"] - t_spawn, 2) if "deciding" in times else None
        ),
        "cpu_s": round(cpu_total, 2),
        "cpu_playback_s": None if cpu_at_play is None else round(cpu_total - cpu_at_play, 2),
        "throttled_s": round(throttled, 2),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def print_windows(windows: dict, scenarios: dict[str, dict]) -> None:
    """What each scenario shows of the target, frame by frame (scripts/clip_windows.py): the
    door can open only inside an accepted run, and only when it processes frames there."""
    for name, sc in scenarios.items():
        print(f"{name} (from {sc['start_s']:.2f} s of the clip):")
        for line in clip_windows.summary_lines(windows, sc["start_s"]):
            print(f"  {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budgets", default="100,45,25,15", help="percent of one core, comma list")
    ap.add_argument("--loops", default="kiosk-off,kiosk-motion,reference")
    ap.add_argument("--scenarios", default="clip,walk-in", help="clip, walk-in or both")
    ap.add_argument(
        "--walk-in-loops",
        default="kiosk-motion,reference",
        help="the loops (of --loops) that also run the walk-in scenario",
    )
    ap.add_argument(
        "--walk-in-start", type=float, default=WALK_IN_START_S, help="clip time the cut starts"
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs of each row (all are kept)")
    ap.add_argument("--skip-empty", action="store_true", help="no empty-scene runs")
    ap.add_argument(
        "--rerun", default="", help="after the table, rerun these loop@budget[@scenario] rows"
    )
    ap.add_argument("--out", default="bench_pi_budget", help="results file name")
    ap.add_argument("--reference-loop", nargs=2, metavar=("CLIP", "KNOWN"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_loop:
        reference_loop(*args.reference_loop)
        return
    wanted = args.scenarios.split(",")
    unknown = set(wanted) - {"clip", "walk-in"}
    if unknown:
        sys.exit(f"unknown scenario(s) {', '.join(sorted(unknown))}: name clip and/or walk-in")
    why = cgroups_allowed()
    if why:
        print(f"cannot run: this machine does not allow CPU quotas: {why}", file=sys.stderr)
        sys.exit(2)
    root = Path(tempfile.mkdtemp(prefix="facegate-pi-"))
    try:
        run_bench(args, wanted, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # the walk-in cut is raw video: ~180 MB


def run_bench(args: argparse.Namespace, wanted: list[str], root: Path) -> None:
    import cv2

    print("enrolling the fixtures and making the empty scene ...", flush=True)
    data = make_data_dir(root)
    known = known_encodings(root)
    face_clip = clip_path()
    windows = clip_windows.load_or_analyse(face_clip)
    fps = windows["fps"]
    cap = cv2.VideoCapture(str(face_clip))
    n_frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    clip_s = n_frames / (cap.get(cv2.CAP_PROP_FPS) or 30.0)
    cap.release()
    # per scenario: the video, where it starts in the clip, its length, when the face appears
    scenarios: dict[str, dict] = {}
    if "clip" in wanted:
        scenarios["clip"] = {"path": face_clip, "first_frame": 0, "start_s": 0.0, "video_s": clip_s}
    if "walk-in" in wanted:
        path, first, _ = make_walk_in(root / "walk_in.mkv", args.walk_in_start)
        scenarios["walk-in"] = {
            "path": path,
            "first_frame": first,
            "start_s": round(first / fps, 3),
            "video_s": (n_frames - first) / fps,
        }
    for sc in scenarios.values():
        seen = clip_windows.first_in_view_s(windows, sc["start_s"])
        sc["face_in_view_s"] = None if seen is None else round(seen - sc["start_s"], 3)
        ok = clip_windows.first_accepted_s(windows, sc["start_s"])
        sc["face_accepted_s"] = None if ok is None else round(ok - sc["start_s"], 3)
    print_windows(windows, scenarios)
    empty_s = 5.0
    empty = None if args.skip_empty else make_empty_scene(root / "empty.mp4", empty_s)
    budgets = [float(b) for b in args.budgets.split(",")]
    loops = args.loops.split(",")
    walk_in_loops = [x for x in loops if x in args.walk_in_loops.split(",")]
    rows: list[dict] = []

    def do(loop: str, budget: float, scenario: str, tag: str = "") -> None:
        sc = scenarios[scenario]
        r = run_one(loop, budget, sc["path"], data, known)
        r["scenario"] = scenario
        r["playback_starts_at_clip_s"] = sc["start_s"]
        r["face_in_view_after_playback_s"] = sc["face_in_view_s"]
        # the first frame the door's rules accept (the reference accepts any match under 0.6)
        r["face_accepted_after_playback_s"] = sc["face_accepted_s"]
        opened, face = r["open_after_playback_s"], sc["face_in_view_s"]
        r["open_after_face_s"] = None if opened is None or face is None else round(opened - face, 3)
        r["cpu_per_video_s_face"] = (
            None if r["cpu_playback_s"] is None else round(r["cpu_playback_s"] / sc["video_s"], 3)
        )
        # the empty scene is the same for every scenario: measured with the clip rows only
        if empty is not None and scenario == "clip":
            e = run_one(loop, budget, empty, data, known)
            r["cpu_per_video_s_empty"] = (
                None if e["cpu_playback_s"] is None else round(e["cpu_playback_s"] / empty_s, 3)
            )
            r["false_grants"] += e["false_grants"]
        r["run"] = tag or "main"
        rows.append(r)
        print(
            f"  {scenario:<7} {loop:<13} {budget:>5.0f}%  open {opened} s after playback"
            + (f" ({r['open_after_face_s']} s after the face)" if scenario != "clip" else "")
            + f", start-up {r['startup_to_deciding_s']} s, load {r['load_before']}",
            flush=True,
        )

    for budget in budgets:
        for scenario in scenarios:
            for loop in loops if scenario == "clip" else walk_in_loops:
                for _ in range(args.repeat):
                    do(loop, budget, scenario)
    for spec in filter(None, args.rerun.split(",")):
        loop, budget, *scenario = spec.split("@")
        name = scenario[0] if scenario else "clip"
        if name not in scenarios:
            sys.exit(f"--rerun {spec}: scenario {name} is not among --scenarios {args.scenarios}")
        do(loop, float(budget), name, "rerun")

    headers = [
        "scenario",
        "loop",
        "budget_pct",
        "run",
        "open_after_running_s",
        "open_after_playback_s",
        "open_after_face_s",
        "false_grants",
        "frames_read",
        "frames_processed",
        "cpu_per_video_s_face",
        "cpu_per_video_s_empty",
        "startup_to_deciding_s",
        "load_before",
    ]
    print(table([[r.get(h) for h in headers] for r in rows], headers))
    print_windows(windows, scenarios)
    path = write_results(
        args.out,
        {
            "clip_s": round(clip_s, 2),
            "empty_s": empty_s,
            "scenarios": {
                name: {
                    "video": sc["path"].name,
                    "first_frame": sc["first_frame"],
                    "starts_at_clip_s": sc["start_s"],
                    "video_s": round(sc["video_s"], 2),
                    "face_in_view_after_playback_s": sc["face_in_view_s"],
                    "face_accepted_after_playback_s": sc["face_accepted_s"],
                    "target_windows": clip_windows.summary_lines(windows, sc["start_s"]),
                }
                for name, sc in scenarios.items()
            },
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
