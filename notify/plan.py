"""Pure decisions of the sender: when to retry, and what a rate limit lets through now.

No I/O, no clock of their own: every function takes ``now`` so tests pass a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

BACKOFF_FIRST_S = 5.0


def backoff_seconds(attempts: int, max_seconds: float, first: float = BACKOFF_FIRST_S) -> float:
    """Wait before try number ``attempts + 1``: 5 s, 10 s, 20 s, ... capped at ``max_seconds``."""
    if attempts <= 0:
        return 0.0
    return min(max_seconds, first * 2 ** min(attempts - 1, 30))


@dataclass
class RatePlan:
    """For one kind: rows to send one by one, rows folded into one summary, and rows to wait."""

    single: list[int] = field(default_factory=list)
    summary: list[int] = field(default_factory=list)
    wait_until: datetime | None = None  # set when nothing may go now


def plan_rate(
    pending: Sequence[int],
    sent_times: Sequence[datetime],
    now: datetime,
    limit: int,
    window: timedelta,
) -> RatePlan:
    """At most ``limit`` messages of one kind per ``window``: one summary instead of a flood.

    ``pending`` are outbox ids of one kind (oldest first), ``sent_times`` when messages of that
    kind went out. With room for all, each goes alone; with room for fewer, all but the last
    slot go alone and the rest become one summary; with no room, everything waits until the
    oldest message of the window leaves it.
    """
    recent = sorted(t for t in sent_times if now - t < window)
    room = limit - len(recent)
    if not pending:
        return RatePlan()
    if room <= 0:
        return RatePlan(wait_until=recent[len(recent) - limit] + window)
    if len(pending) <= room:
        return RatePlan(single=list(pending))
    return RatePlan(single=list(pending[: room - 1]), summary=list(pending[room - 1 :]))
