"""Presentation-attack videos made from the fixture photos: a photo held up to the camera.

A printed photo is a plane. Held in a hand it moves along a smooth path with tremor; seen by a
pinhole camera its image moves by a similarity (plane facing the camera) or a homography (plane
tilted). The frames are composed onto a background at the clip's face sizes, at the clip's frame
rate, with sensor noise, light changes and JPEG compression, so the detector and the landmark
model see what they would see at a door. Used by the liveness tests and scripts/bench_liveness.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

FPS = 29.97
FRAME_SIZE = (640, 360)  # (width, height), the fixture clip's

AttackKind = Literal["rigid", "perspective", "still"]  # still: a print on a stand


@dataclass(frozen=True)
class AttackSpec:
    """One attack video: which motion, how large the face, how long, which random path."""

    kind: AttackKind = "rigid"
    face_px: int = 75  # face box height in the frame (the clip has 45-110 px)
    seconds: float = 3.0
    seed: int = 0
    max_tilt_deg: float = 30.0  # perspective only: yaw/pitch of the print, peak
    jpeg_quality: tuple[int, int] = (55, 85)
    noise_sigma: float = 2.0
    exposure: float = 0.5  # fraction of the frame time the shutter is open (motion blur)
    white_border: bool = True  # a print has a margin; a phone screen would not
    bend_deg: float = 0.0  # > 0: the print is flexed while held (arc angle, peak) - not covered

    @property
    def n_frames(self) -> int:
        return round(self.seconds * FPS)


def _smooth_walk(rng: np.random.Generator, n: int, cutoff_frames: float) -> np.ndarray:
    """A smooth random path in [-1, 1]: white noise low-passed by a Gaussian, then normalised."""
    pad = int(4 * cutoff_frames) + 1
    noise = rng.standard_normal(n + 2 * pad)
    k = np.exp(-0.5 * (np.arange(-pad, pad + 1) / cutoff_frames) ** 2)
    path = np.convolve(noise, k / k.sum(), mode="same")[pad : pad + n]
    path -= path.mean()
    peak = np.abs(path).max()
    return path / peak if peak > 0 else path


def _hand_path(spec: AttackSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Pose of the print per frame: slow arm drift plus 8-12 Hz hand tremor."""
    n = spec.n_frames
    t = np.arange(n) / FPS
    tremor_hz = rng.uniform(8.0, 12.0)
    tremor = np.sin(2 * np.pi * tremor_hz * t + rng.uniform(0, 2 * np.pi))
    tilt = spec.max_tilt_deg if spec.kind == "perspective" else 0.0
    if spec.kind == "still":  # propped up, not held: only the light and the sensor change
        zero = np.zeros(n)
        gain = 1.0 + 0.02 * rng.standard_normal(n)
        return {
            "tx": zero,
            "ty": zero,
            "roll": zero,
            "yaw": zero,
            "pitch": zero,
            "scale": zero + 1,
            "gain": gain,
        }
    return {
        "tx": 60 * _smooth_walk(rng, n, 12) + 0.8 * tremor,  # pixels
        "ty": 35 * _smooth_walk(rng, n, 12) + 0.8 * np.roll(tremor, 3),
        "roll": np.deg2rad(10 * _smooth_walk(rng, n, 15) + 0.3 * tremor),
        "yaw": np.deg2rad(tilt * _smooth_walk(rng, n, 14)),
        "pitch": np.deg2rad(tilt * 0.7 * _smooth_walk(rng, n, 16)),
        "scale": 1.0 + 0.15 * _smooth_walk(rng, n, 20),  # arm moving closer / further
        "gain": 1.0 + 0.18 * _smooth_walk(rng, n, 25) + 0.02 * rng.standard_normal(n),
    }


def print_image(photo_rgb: np.ndarray, face_box: tuple[int, int, int, int], border: bool):
    """Crop the photo around the face like a print (head and shoulders), with a white margin.

    Returns the print (RGB) and the face box inside it as (top, right, bottom, left).
    """
    top, right, bottom, left = face_box
    fh, fw = bottom - top, right - left
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half_w, half_h = 1.4 * fw, 1.7 * fh
    h, w = photo_rgb.shape[:2]
    x0, x1 = int(max(0, cx - half_w)), int(min(w, cx + half_w))
    y0, y1 = int(max(0, cy - half_h * 0.9)), int(min(h, cy + half_h * 1.1))
    crop = photo_rgb[y0:y1, x0:x1]
    box = (top - y0, right - x0, bottom - y0, left - x0)
    if border:
        m = max(4, int(0.06 * max(crop.shape[:2])))
        crop = cv2.copyMakeBorder(crop, m, m, m, m, cv2.BORDER_CONSTANT, value=(245, 245, 240))
        box = (box[0] + m, box[1] + m, box[2] + m, box[3] + m)
    return crop, box


def background(seed: int = 0) -> np.ndarray:
    """A plain room-like background (BGR): a wall gradient, a door frame, mild texture."""
    w, h = FRAME_SIZE
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall = 150 + 40 * (xx / w) - 30 * (yy / h)
    img = np.dstack([wall * 0.85, wall * 0.95, wall]).astype(np.float32)
    img[:, int(w * 0.08) : int(w * 0.12)] *= 0.55  # a door frame
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(img, (5, 5), 0), 0, 255).astype(np.uint8)


def _plane_homography(pose: dict[str, float], print_size, face_box, spec: AttackSpec):
    """Homography from print pixels to frame pixels for a print at a 3-D pose (pinhole camera)."""
    ph, pw = print_size
    top, right, bottom, left = face_box
    # Print pixels -> metres-ish plane coordinates centred on the face, scaled to face_px
    s = spec.face_px / float(bottom - top) * pose["scale"]
    fcx, fcy = (left + right) / 2, (top + bottom) / 2
    to_plane = np.array([[s, 0, -s * fcx], [0, s, -s * fcy], [0, 0, 1]], dtype=np.float64)
    f = 600.0  # focal length in pixels (a ~56 degree webcam at 640 px)
    z = 600.0  # plane distance, same units as the plane pixels, so scale stays ~1
    cr, sr = np.cos(pose["roll"]), np.sin(pose["roll"])
    cy_, sy_ = np.cos(pose["yaw"]), np.sin(pose["yaw"])
    cp, sp = np.cos(pose["pitch"]), np.sin(pose["pitch"])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    ry = np.array([[cy_, 0, sy_], [0, 1, 0], [-sy_, 0, cy_]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r = ry @ rx @ rz
    w, h = FRAME_SIZE
    cx, cy = w / 2 + pose["tx"], h * 0.42 + pose["ty"]
    k = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]])
    # Plane point (u, v, 0) -> camera R @ (u, v, 0) + (0, 0, z): columns r1, r2, t
    rt = np.column_stack([r[:, 0], r[:, 1], np.array([0, 0, z])])
    return k @ rt @ to_plane


def _motion_blur(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Blur along the displacement (dx, dy) the print makes while the shutter is open."""
    length = float(np.hypot(dx, dy))
    if length < 1.0:
        return img
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    ux, uy = dx / length, dy / length
    for s in np.linspace(-length / 2, length / 2, 2 * size):
        kernel[int(round(c + s * uy)), int(round(c + s * ux))] = 1.0
    return cv2.filter2D(img, -1, kernel / kernel.sum())


def attack_frames(
    photo_rgb: np.ndarray, face_box: tuple[int, int, int, int], spec: AttackSpec
) -> Iterator[np.ndarray]:
    """Yield the attack video's BGR frames (FPS frames a second, FRAME_SIZE): a held-up print."""
    print_rgb, box = print_image(photo_rgb, face_box, spec.white_border)
    print_bgr = cv2.cvtColor(print_rgb, cv2.COLOR_RGB2BGR)
    # Pre-shrink the print so warping never minifies by more than ~2x (a print has no pixel grid
    # to alias against)
    shrink = min(1.0, 2.0 * spec.face_px / float(box[2] - box[0]))
    if shrink < 1.0:
        print_bgr = cv2.resize(print_bgr, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        box = tuple(round(v * shrink) for v in box)
    if spec.bend_deg <= 0:
        yield from _present(lambda i: print_bgr, box, spec, supersample=1)
        return
    rng = np.random.default_rng(spec.seed + 10_000)
    angles = np.deg2rad(spec.bend_deg) * (0.5 + 0.5 * _smooth_walk(rng, spec.n_frames, 10))
    yield from _present(lambda i: bent_print(print_bgr, angles[i]), box, spec, supersample=1)


def bent_print(print_bgr: np.ndarray, angle: float) -> np.ndarray:
    """The print as seen when it is curved round a vertical axis (sides away from the camera)
    over ``angle`` radians of arc, viewed from three print widths, re-mapped onto its flat frame."""
    ph, pw = print_bgr.shape[:2]
    if angle < 1e-3:
        return print_bgr
    radius = pw / angle
    z0 = 3.0 * pw
    u = np.linspace(-pw / 2, pw / 2, 4 * pw)  # arc length from the centre column
    depth = z0 + radius * (1 - np.cos(u / radius))
    x_seen = z0 * radius * np.sin(u / radius) / depth  # monotonic in u
    xs = np.arange(pw, dtype=np.float64) - pw / 2
    u_of_x = np.interp(xs, x_seen, u)
    depth_of_x = np.interp(xs, x_seen, depth)
    ys = np.arange(ph, dtype=np.float64) - ph / 2
    map_x = np.tile((u_of_x + pw / 2).astype(np.float32), (ph, 1))
    map_y = (ys[:, None] * depth_of_x[None, :] / z0 + ph / 2).astype(np.float32)
    return cv2.remap(print_bgr, map_x, map_y, cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def screen_image(bgr: np.ndarray, glare_at: tuple[float, float] | None = None) -> np.ndarray:
    """How a phone screen shows ``bgr``: every pixel three R, G, B stripes with a dark gap between
    rows, a little brighter and bluer than a print, with a glare of the cover glass."""
    h, w = bgr.shape[:2]
    big = cv2.resize(bgr, (w * 3, h * 3), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    stripes = np.zeros((3, 3, 3), np.float32)
    for col, channel in enumerate((2, 1, 0)):  # R, G, B subpixels left to right (BGR order)
        stripes[:, col, channel] = 1.0
    stripes[2] *= 0.35  # the gap between pixel rows
    pattern = np.tile(stripes, (h, w, 1))
    out = big * pattern * 3.6 * np.array([1.08, 1.0, 0.94], np.float32)
    if glare_at is not None:
        yy, xx = np.mgrid[0 : 3 * h, 0 : 3 * w].astype(np.float32)
        gx, gy = glare_at[0] * 3 * w, glare_at[1] * 3 * h
        glare = np.exp(-(((xx - gx) / (0.75 * w)) ** 2 + ((yy - gy) / (0.36 * h)) ** 2))
        out += 50 * glare[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def screen_replay_frames(
    video_bgr: list[np.ndarray], face_box: tuple[int, int, int, int], spec: AttackSpec
) -> Iterator[np.ndarray]:
    """A video of the person played full-screen on a phone held up to the camera (``face_box``:
    where the face is in the video, which sets the scale)."""
    box = tuple(3 * v for v in face_box)

    def show(i: int) -> np.ndarray:
        frame = video_bgr[i % len(video_bgr)]
        return screen_image(frame, glare_at=(0.25 + 0.1 * np.sin(i / 20), 0.2))

    yield from _present(show, box, spec, supersample=2)


def _present(image_for_frame, box, spec: AttackSpec, supersample: int) -> Iterator[np.ndarray]:
    """Hold the image (print or screen) up to the camera along a hand-held path; yield frames.

    ``supersample`` renders at that many times the camera resolution and averages it down, as a
    sensor integrates light over its pixels (that is what turns a screen's grid into moire).
    """
    rng = np.random.default_rng(spec.seed)
    path = _hand_path(spec, rng)
    bg = background(spec.seed).astype(np.float32)
    w, h = FRAME_SIZE
    up = np.diag([supersample, supersample, 1.0])
    face_centre = np.array([[[(box[1] + box[3]) / 2, (box[0] + box[2]) / 2]]], np.float64)
    prev = None
    for i in range(spec.n_frames):
        image = image_for_frame(i)
        ph, pw = image.shape[:2]
        pose = {key: float(v[i]) for key, v in path.items()}
        hmat = _plane_homography(pose, (ph, pw), box, spec)
        size = (w * supersample, h * supersample)
        warped = cv2.warpPerspective(image, up @ hmat, size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(
            np.full((ph, pw), 255, np.uint8), up @ hmat, size, flags=cv2.INTER_LINEAR
        )
        if supersample > 1:  # the sensor integrates over its pixels, the lens blurs a little
            warped = cv2.resize(warped, (w, h), interpolation=cv2.INTER_AREA)
            warped = cv2.GaussianBlur(warped, (5, 5), 0.9)
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
        centre = cv2.perspectiveTransform(face_centre, hmat)[0, 0]
        if prev is not None:
            dx, dy = (centre - prev) * spec.exposure
            warped, mask = _motion_blur(warped, dx, dy), _motion_blur(mask, dx, dy)
        prev = centre
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        frame = alpha * warped.astype(np.float32) + (1 - alpha) * bg
        frame *= pose["gain"]
        frame += rng.normal(0, spec.noise_sigma, frame.shape).astype(np.float32)
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        q = int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, q])
        yield cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else frame


# --- what the detector and the landmark model make of a video -----------------------------------


@dataclass
class FaceSequence:
    """One face followed through a video: per processed frame its time, box, landmarks, crop."""

    frame_idx: list[int]
    t: list[float]
    boxes: list[tuple[int, int, int, int]]
    landmarks: list[np.ndarray]
    crops: list[np.ndarray]  # BGR face crops (for the strict check)
    encodings: list[np.ndarray]  # a sample, for telling who it is

    def __len__(self) -> int:
        return len(self.t)

    def median_distance(self, engine, ref: np.ndarray) -> float:
        return float(np.median([np.linalg.norm(e - ref) for e in self.encodings]))

    def every(self, n: int) -> FaceSequence:
        """Every n-th frame, as a pipeline that detects on every n-th frame sees the face."""
        pick = slice(None, None, n)
        return FaceSequence(
            self.frame_idx[pick],
            self.t[pick],
            self.boxes[pick],
            self.landmarks[pick],
            self.crops[pick],
            self.encodings,
        )


def _iou(a, b) -> float:
    top, right = max(a[0], b[0]), min(a[1], b[1])
    bottom, left = min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)

    def area(x):
        return (x[1] - x[3]) * (x[2] - x[0])

    return inter / float(area(a) + area(b) - inter) if inter else 0.0


def _padded_crop(bgr: np.ndarray, box, pad: float = 0.25) -> np.ndarray:
    """The face crop as the pipeline passes it to the liveness check (box grown by 25 %)."""
    top, right, bottom, left = box
    h, w = bottom - top, right - left
    y0, y1 = max(0, int(top - pad * h)), min(bgr.shape[0], int(bottom + pad * h))
    x0, x1 = max(0, int(left - pad * w)), min(bgr.shape[1], int(right + pad * w))
    return bgr[y0:y1, x0:x1].copy()


def face_sequences(
    engine, frames_bgr, fps: float = FPS, *, min_len: int = 10, max_gap: int = 3
) -> list[FaceSequence]:
    """Detect (HOG, upsampling 1) and landmark every frame; chain boxes by overlap into tracks."""
    tracks: list[FaceSequence] = []
    open_tracks: list[tuple[FaceSequence, int]] = []  # (sequence, last frame index)
    for i, bgr in enumerate(frames_bgr):
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        boxes = engine.detect(rgb, upsample=1)
        marks = engine.landmarks(rgb, boxes)
        still_open = [(s, last) for s, last in open_tracks if i - last <= max_gap]
        for box, lm in zip(boxes, marks):
            best = max(still_open, key=lambda sl: _iou(sl[0].boxes[-1], box), default=None)
            if best is not None and _iou(best[0].boxes[-1], box) > 0.3:
                seq = best[0]
                still_open.remove(best)
            else:
                seq = FaceSequence([], [], [], [], [], [])
                tracks.append(seq)
            top, right, bottom, left = box
            seq.frame_idx.append(i)
            seq.t.append(i / fps)
            seq.boxes.append(box)
            seq.landmarks.append(lm)
            seq.crops.append(_padded_crop(bgr, box))
            if len(seq.t) % 10 == 1:
                seq.encodings.extend(engine.encode(rgb, [box]))
            open_tracks = [(s, last) for s, last in open_tracks if s is not seq]
            open_tracks.append((seq, i))
        open_tracks = [(s, last) for s, last in open_tracks if i - last <= max_gap]
    return [s for s in tracks if len(s) >= min_len]


def video_frames(path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def video_sequences(engine, path) -> list[FaceSequence]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or FPS
    cap.release()
    return face_sequences(engine, video_frames(path), fps)


def load_photo(path) -> np.ndarray:
    """An RGB photo as face_recognition loads it."""
    import face_recognition

    return face_recognition.load_image_file(str(path))


def attack_sequence(engine, photo_path, spec: AttackSpec) -> FaceSequence:
    """The longest face track the detector finds in the attack video made from ``photo_path``."""
    photo = load_photo(photo_path)
    boxes = engine.detect(photo, max_side=1024)
    if len(boxes) != 1:
        raise ValueError(f"{photo_path}: need exactly one face, found {len(boxes)}")
    seqs = face_sequences(engine, attack_frames(photo, boxes[0], spec))
    if not seqs:
        raise AssertionError(f"no face track in the attack video of {photo_path} ({spec})")
    return max(seqs, key=len)


def swap_frames(
    engine, photo_rgb: np.ndarray, photo_box, live_bgr: list[np.ndarray], spec: AttackSpec
) -> list[np.ndarray]:
    """A print held up for ``spec.seconds``, then dropped to show the attacker's own live face
    where the print's face was (``live_bgr``: frames of a real face, shifted into place), so a
    tracker that follows boxes sees one face track throughout."""
    held = list(attack_frames(photo_rgb, photo_box, spec))
    end = engine.detect(cv2.cvtColor(held[-1], cv2.COLOR_BGR2RGB), upsample=1)
    start = engine.detect(cv2.cvtColor(live_bgr[0], cv2.COLOR_BGR2RGB), upsample=1)
    if not end or not start:
        raise AssertionError("swap video: a face was not found at the swap")
    (t1, r1, b1, l1), (t2, r2, b2, l2) = end[0], start[0]
    shift = np.float32([[1, 0, (l1 + r1 - l2 - r2) / 2], [0, 1, (t1 + b1 - t2 - b2) / 2]])
    w, h = FRAME_SIZE
    return held + [
        cv2.warpAffine(f, shift, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in live_bgr
    ]
