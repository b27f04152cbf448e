"""Work that adapts to a slow CPU: full-frame search spacing, encoding pace, and tracks that
survive gaps."""

from __future__ import annotations

from appliance.boxes import iou
from appliance.cadence import DetectCadence, encode_due
from appliance.track import Tracker


def test_nothing_tracked_searches_every_nth_frame_whatever_it_costs():
    cadence = DetectCadence(every_frames=2)
    done = []
    now = 0.0
    for i in range(6):
        if cadence.due(now, tracking=False):
            done.append(i)
            cadence.done(now, now + 0.5)  # a slow pass
        now += 0.6
    assert done == [0, 2, 4]


def test_while_tracking_full_passes_take_at_most_their_duty_share():
    cadence = DetectCadence(every_frames=1, duty=0.25, max_interval_s=10.0)
    now, busy, passes = 0.0, 0.0, 0
    while now < 20.0:
        if cadence.due(now, tracking=True):
            cadence.done(now, now + 0.4)  # 0.4 s a pass (a Pi's share of a core)
            now += 0.4
            busy += 0.4
            passes += 1
        now += 0.05  # a tracked frame
    assert passes >= 3
    assert busy / now <= 0.27


def test_while_tracking_a_cheap_pass_still_runs_every_few_frames():
    cadence = DetectCadence(every_frames=5, duty=0.25)
    due = []
    for i in range(20):
        now = i * 0.033
        if cadence.due(now, tracking=i > 0):
            due.append(i)
            cadence.done(now, now + 0.005)
    assert due == [0, 5, 10, 15]


def test_a_track_survives_the_gaps_of_a_slow_cpu_but_not_a_face_gone_for_good():
    tracker = Tracker(max_age=1.0)
    box = (100, 200, 200, 100)
    (first, _), *_ = tracker.update([box], 0.0)[0]
    # frames 0.8 s apart (a full-frame search on a starved CPU); the face missed once
    for t in (0.8, 1.6, 2.4):
        tracker.update([box], t)
    pairs, ended = tracker.update([], 3.2)
    assert not ended
    pairs, ended = tracker.update([box], 4.0)
    assert [tr.id for tr, _ in pairs] == [first.id] and not ended
    # gone: a few gaps later the track ends
    ended_at = None
    for t in (4.8, 5.6, 6.4, 7.2, 8.0):
        _, ended = tracker.update([], t)
        if ended:
            ended_at = t
            break
    assert ended_at is not None and ended_at <= 7.2


def test_a_face_re_found_around_its_track_after_a_long_gap_stays_that_track():
    # frames 0.4 s apart: the face moved most of its width, too far for IoU (boxes measured on the
    # fixture clip: IoU 0.28), by a full pass or by the search around its own track
    old, moved, back = (76, 235, 166, 145), (90, 280, 184, 186), (76, 235, 166, 145)
    assert iou(old, moved) < 0.3
    tracker = Tracker()
    (track, _), *_ = tracker.update([old], 0.0)[0]
    pairs, _ = tracker.update([moved], 0.4)  # a full pass: no second track on the same face
    assert [(tr.id, box) for tr, box in pairs] == [(track.id, moved)]
    pairs, _ = tracker.update([back], 0.8, create=False, owners=[track.id])
    assert [(tr.id, box) for tr, box in pairs] == [(track.id, back)]
    assert [tr.id for tr in tracker.active()] == [track.id]


def test_two_faces_side_by_side_stay_two_tracks():
    tracker = Tracker()
    left, right = (100, 200, 200, 100), (100, 420, 200, 320)
    pairs, _ = tracker.update([left, right], 0.0)
    ids = {box: tr.id for tr, box in pairs}
    # both moved right by 60 px in 0.4 s: each keeps its own track
    left2, right2 = (100, 260, 200, 160), (100, 480, 200, 380)
    pairs, _ = tracker.update([right2, left2], 0.4)
    assert {box: tr.id for tr, box in pairs} == {left2: ids[left], right2: ids[right]}


def test_an_owned_box_too_far_or_of_another_size_is_not_the_track():
    tracker = Tracker()
    old = (100, 200, 200, 100)
    (track, _), *_ = tracker.update([old], 0.0)[0]
    far = (100, 420, 200, 320)  # two face widths away
    small = (140, 170, 180, 130)  # less than half the height
    for box in (far, small):
        pairs, _ = tracker.update([box], 0.4, create=False, owners=[track.id])
        assert pairs == [] and track.box == old


def test_at_a_full_frame_rate_a_track_ends_after_max_age():
    tracker = Tracker(max_age=1.0)
    tracker.update([(100, 200, 200, 100)], 0.0)
    ended_at = None
    t = 0.0
    while ended_at is None and t < 5:
        t = round(t + 0.033, 3)
        if tracker.update([], t)[1]:
            ended_at = t
    assert ended_at is not None and 1.0 < ended_at <= 1.1


def _due(since_ms, *, pending=True, paced=False, live=False):
    return encode_due(
        since_ms,
        pending=pending,
        paced=paced,
        live=live,
        pending_ms=50.0,
        paced_ms=400.0,
        decided_ms=1000.0,
    )


def test_a_face_is_encoded_at_once_then_every_other_frame_until_its_vote_agrees():
    assert _due(None)
    assert not _due(33.0)
    assert _due(66.0)


def test_waiting_for_liveness_re_encodings_are_paced_but_the_granting_frame_is_encoded():
    assert not _due(66.0, paced=True)  # paced: liveness frames first
    assert _due(400.0, paced=True)
    assert _due(66.0, paced=True, live=True)  # the frame that would let the face in
    assert not _due(33.0, paced=True, live=True)  # ... but never twice in a row at 30 fps


def test_a_decided_face_is_re_encoded_every_reencode_ms():
    assert not _due(500.0, pending=False, live=True)
    assert _due(1000.0, pending=False)
