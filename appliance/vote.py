"""The k-of-n vote: a track decides on a person only when its recent encodings agree.

One encoding can match the wrong person (a blurred frame, a turned head); requiring ``k`` of the
last ``n`` encodings to name the same person, each under the threshold and with a margin to the
runner-up, is what keeps a door from opening for a look-alike.

One exception (``strong``): a single encoding much closer than the threshold, with the margin
(and the cohort ratio the matcher checked), and no confident match for anyone else in the window,
decides alone. Such a match is rare for a look-alike (scripts/bench_recognition.py ``--strong``
measures single photos accepted at that distance); it lets a slow CPU, which gets one encoding
of a face in the time a fast one gets four, decide on the first good frame. Liveness is still
required after the vote (appliance/track_decision.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.match import Match


@dataclass(frozen=True)
class VoteResult:
    person_id: str | None  # the agreed person, or None
    votes: int  # encodings that agreed on that person (or on the leading candidate)
    distance: float  # best distance among the agreeing encodings (inf when none)
    unknown_votes: int  # encodings that matched nobody with a margin


def vote(
    recent: Sequence[Match], *, needed: int, window: int, margin: float, strong: float = 0.0
) -> VoteResult:
    """Decide on the last ``window`` matches: ``needed`` of them must agree on one person.

    A match only counts for a person when it is under the threshold (``person_id`` set) and its
    margin to the second-best person is at least ``margin``. With ``strong`` > 0, one counted
    match at a distance of at most ``strong`` is enough when every counted match in the window
    names that person (0: off).
    """
    last = list(recent)[-window:]
    good = [m for m in last if m.person_id is not None and m.margin >= margin]
    unknown = len(last) - len(good)
    if not good:
        return VoteResult(None, 0, float("inf"), unknown)
    counts = Counter(m.person_id for m in good)
    person, n = counts.most_common(1)[0]
    best = min(m.distance for m in good if m.person_id == person)
    if n >= needed and n > len(good) - n:  # a clear majority among the confident matches
        return VoteResult(person, n, best, unknown)
    if strong > 0.0 and best <= strong and n == len(good):  # one strong match, nobody else
        return VoteResult(person, n, best, unknown)
    return VoteResult(None, n, best, unknown)


def is_unknown(recent: Sequence[Match], *, window: int, margin: float) -> bool:
    """True when each of the last ``window`` encodings (a full window) matched nobody.

    "Nobody" is what the vote does not count: over the threshold, or under it without the
    margin to the runner-up. One confident match in the window, or a window not yet full (the
    first frames of someone walking up), is not unknown. The door also waits
    ``track_decision.UNKNOWN_AFTER_S`` before it denies.
    """
    last = list(recent)[-window:]
    return len(last) >= window and not any(
        m.person_id is not None and m.margin >= margin for m in last
    )
