"""The sender's pure decisions: backoff and the per-kind rate limit."""

from datetime import UTC, datetime, timedelta

from notify.plan import backoff_seconds, plan_rate

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def test_backoff_doubles_and_is_capped():
    assert [backoff_seconds(n, 60) for n in range(0, 6)] == [0, 5, 10, 20, 40, 60]
    assert backoff_seconds(1000, 600) == 600


def test_room_for_all_sends_each():
    plan = plan_rate([1, 2], [NOW - timedelta(minutes=1)], NOW, 3, WINDOW)
    assert plan.single == [1, 2] and plan.summary == [] and plan.wait_until is None


def test_a_flood_becomes_one_summary_in_the_last_slot():
    plan = plan_rate(list(range(10)), [], NOW, 3, WINDOW)
    assert plan.single == [0, 1] and plan.summary == list(range(2, 10))


def test_no_room_waits_until_the_oldest_send_leaves_the_window():
    sent = [NOW - timedelta(minutes=m) for m in (9, 5, 1)]
    plan = plan_rate([7], sent, NOW, 3, WINDOW)
    assert plan.single == [] and plan.summary == []
    assert plan.wait_until == NOW + timedelta(minutes=1)


def test_sends_older_than_the_window_do_not_count():
    plan = plan_rate([7], [NOW - timedelta(minutes=11)] * 3, NOW, 3, WINDOW)
    assert plan.single == [7]
