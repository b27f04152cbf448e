"""The central heartbeat-missing alert on the real PostgreSQL the sync tests use: a silent door
opens one alert, stays one alert while silent, closes when it is heard again; doors cannot call it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def conn(central_dsn):
    with psycopg.connect(central_dsn) as c:
        yield c
        c.rollback()  # every row of a test goes away with it


def _door(conn, name: str, heartbeat: datetime | None, created: datetime) -> str:
    site = conn.execute(
        "insert into public.sites (name) values (%s) returning id", [f"site-{uuid.uuid4()}"]
    ).fetchone()[0]
    dev = conn.execute(
        "insert into public.devices (site_id, name, created_at) values (%s, %s, %s) returning id",
        [site, name, created],
    ).fetchone()[0]
    if heartbeat is not None:
        conn.execute(
            "insert into public.device_heartbeats (device_id, site_id, ts) values (%s, %s, %s)",
            [dev, site, heartbeat],
        )
    return str(dev)


def _check(conn, at: datetime, silence: str = "5 minutes") -> list[tuple]:
    rows = conn.execute(
        "select device_id::text, kind, last_seen from "
        "public.check_missing_heartbeats(%s::interval, %s)",
        [silence, at],
    ).fetchall()
    return sorted(rows)


def _only_mine(rows, *devs):
    return [r for r in rows if r[0] in devs]


def test_a_silent_door_raises_one_alert_until_it_is_heard_again(conn):
    conn.execute("listen facegate_alerts")
    quiet = _door(conn, "quiet-door", T0 - timedelta(minutes=10), T0 - timedelta(days=1))
    alive = _door(conn, "alive-door", T0 - timedelta(minutes=1), T0 - timedelta(days=1))
    never = _door(conn, "new-door", None, T0 - timedelta(minutes=6))
    young = _door(conn, "just-made", None, T0 - timedelta(minutes=1))

    opened = _only_mine(_check(conn, T0), quiet, alive, never, young)
    assert opened == sorted(
        [
            (quiet, "heartbeat_missing", T0 - timedelta(minutes=10)),
            (never, "heartbeat_missing", None),
        ]
    )
    conn.commit()  # notifications are delivered on commit
    doors = {json.loads(n.payload)["door"] for n in conn.notifies(timeout=1)}
    assert {"quiet-door", "new-door"} <= doors and not {"alive-door", "just-made"} & doors

    # still silent a minute later: no second alert
    assert _only_mine(_check(conn, T0 + timedelta(minutes=1)), quiet, never) == []

    # the quiet door is heard again: its alert closes; silent again later: a new one opens
    conn.execute(
        "update public.device_heartbeats set ts = %s where device_id = %s",
        [T0 + timedelta(minutes=2), quiet],
    )
    _check(conn, T0 + timedelta(minutes=2))
    closed = conn.execute(
        "select cleared_at from public.device_alerts where device_id = %s", [quiet]
    ).fetchall()
    assert closed == [(T0 + timedelta(minutes=2),)]
    again = _only_mine(_check(conn, T0 + timedelta(minutes=8)), quiet)
    assert again == [(quiet, "heartbeat_missing", T0 + timedelta(minutes=2))]
    # the alerts table is this feature's own: leave it empty for the other tests of the session
    conn.execute("delete from public.device_alerts")
    mine = [quiet, alive, never, young]
    conn.execute("delete from public.device_heartbeats where device_id = any(%s::uuid[])", [mine])
    conn.execute("delete from public.devices where id = any(%s::uuid[])", [mine])
    conn.commit()


def test_doors_cannot_run_the_check_or_read_alerts(conn):
    conn.execute("set local role authenticated")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from public.check_missing_heartbeats()")
    conn.rollback()
    conn.execute("set local role authenticated")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from public.device_alerts")


def test_a_bad_interval_is_refused(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("select * from public.check_missing_heartbeats(interval '0')")
