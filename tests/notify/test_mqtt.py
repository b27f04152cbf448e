"""MQTT against Debian's real mosquitto broker, started by the test on a free port.

A paho subscriber checks the events, the availability (online, offline as last will, and back),
Home Assistant discovery, the retained door states, and the lock command's path into the
commands table (only when allowed).
"""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from appliance import store
from appliance.settings import SettingsError
from notify.mqtt import parse_url
from notify.service import Sender, build_channels
from tests.notify.servers import Mosquitto, free_port, make_tls_files
from tests.notify.test_outbox import write_events


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class Subscriber:
    """Records every message (topic, payload, retained) on the broker."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, topic: str) -> list[str]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path) as b:
        yield b


def mqtt_sender(make_settings, db_of, port, **overrides):
    settings = make_settings(mqtt_url=f"mqtt://127.0.0.1:{port}", **overrides)
    db = db_of(settings)
    sender = Sender(settings, db, build_channels(settings))
    sender.start(store.utc_now())
    return settings, db, sender


def test_url_parsing():
    assert parse_url("mqtts://ha:p%40ss@broker.lan") == {
        "tls": True,
        "host": "broker.lan",
        "port": 8883,
        "username": "ha",
        "password": "p@ss",
    }
    assert parse_url("mqtt://10.0.0.5:1884")["port"] == 1884
    with pytest.raises(ValueError):
        parse_url("http://broker")


def test_events_availability_discovery_and_states(broker, make_settings, db_of):
    sub = Subscriber(broker.port)
    settings, db, sender = mqtt_sender(make_settings, db_of, broker.port)
    channel = sender.channels["mqtt"]
    try:
        _wait(channel.ready)
        _wait(lambda: sub.on("facegate/front-door/status"))
        assert sub.on("facegate/front-door/status")[-1] == "online"
        lock_cfg = json.loads(
            _wait(lambda: sub.on("homeassistant/lock/facegate_front-door/lock/config"))[-1]
        )
        assert lock_cfg["command_topic"] == "facegate/front-door/lock/set"
        assert lock_cfg["availability_topic"] == "facegate/front-door/status"
        for topic in (
            "homeassistant/sensor/facegate_front-door/last_person/config",
            "homeassistant/binary_sensor/facegate_front-door/door/config",
            "homeassistant/event/facegate_front-door/decision/config",
        ):
            assert json.loads(_wait(lambda t=topic: sub.on(t))[-1])["device"]["identifiers"] == [
                "facegate_front-door"
            ]

        [eid] = write_events(settings, [("access_granted", {"person_name": "Ann"})])
        sender.drain(store.utc_now())
        event = json.loads(_wait(lambda: sub.on("facegate/front-door/event"))[-1])
        assert event["id"] == eid and event["event_type"] == "access_granted"
        assert _wait(lambda: sub.on("facegate/front-door/last_person")) == ["Ann"]
        assert db.execute("SELECT status FROM outbox").fetchone()[0] == "sent"

        store.put_status(db, "appliance", {"locked": False, "door_open": True})
        channel.tick(store.utc_now())
        assert _wait(lambda: sub.on("facegate/front-door/lock/state")) == ["UNLOCKED"]
        assert _wait(lambda: sub.on("facegate/front-door/door/state")) == ["ON"]
        channel.tick(store.utc_now())  # unchanged: not published again
        time.sleep(0.2)
        assert sub.on("facegate/front-door/lock/state") == ["UNLOCKED"]

        # the connection dies without a goodbye: the broker publishes the last will, and the
        # channel reconnects by itself and says online again
        channel.client.socket().close()
        _wait(lambda: "offline" in sub.on("facegate/front-door/status"))
        _wait(lambda: sub.on("facegate/front-door/status")[-1] == "online")
    finally:
        sender.close()
        sub.close()


@pytest.fixture
def auth_broker(tmp_path):
    with Mosquitto(tmp_path, users={"door": "d00r", "ha": "h4"}) as b:
        yield b


def auth_sender(make_settings, db_of, port, **overrides):
    settings = make_settings(mqtt_url=f"mqtt://door:d00r@127.0.0.1:{port}", **overrides)
    db = db_of(settings)
    sender = Sender(settings, db, build_channels(settings))
    sender.start(store.utc_now())
    return settings, db, sender


def test_unlock_over_mqtt_is_refused_on_a_broker_without_passwords(make_settings):
    """Anyone on an anonymous broker could publish the lock command: the setting says so."""
    with pytest.raises(SettingsError, match="FACEGATE_MQTT_ALLOW_UNLOCK needs a broker"):
        make_settings(mqtt_url="mqtt://127.0.0.1:1883", mqtt_allow_unlock=True)
    with pytest.raises(SettingsError, match="FACEGATE_MQTT_ALLOW_UNLOCK"):
        make_settings(mqtt_allow_unlock=True)  # no MQTT at all
    assert make_settings(mqtt_url="mqtt://127.0.0.1:1883").mqtt_allow_unlock is False
    assert make_settings(mqtt_url="mqtts://door:pw@b.lan", mqtt_allow_unlock=True).mqtt_allow_unlock


def test_home_assistant_unlock_is_a_command_only_when_allowed(auth_broker, make_settings, db_of):
    broker = auth_broker
    for allowed in (False, True):
        settings, db, sender = auth_sender(
            make_settings, db_of, broker.port, mqtt_allow_unlock=allowed
        )
        channel = sender.channels["mqtt"]
        try:
            _wait(channel.ready)
            time.sleep(0.2)  # the subscription is acknowledged
            pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ha-{allowed}")
            pub.username_pw_set("ha", "h4")
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            pub.publish("facegate/front-door/lock/set", "UNLOCK", qos=1).wait_for_publish(5)
            if allowed:
                cmd = _wait(lambda d=db: store.pending_commands(d))[0]
                assert cmd["kind"] == "unlock" and cmd["requested_by"] == "home-assistant (mqtt)"
            else:
                time.sleep(0.5)
                assert store.pending_commands(db) == []
            pub.disconnect()
            pub.loop_stop()
        finally:
            sender.close()


def test_broker_down_leaves_the_event_waiting_then_it_goes_by_itself(
    tmp_path, make_settings, db_of
):
    port = free_port()
    settings, db, sender = mqtt_sender(make_settings, db_of, port)
    channel = sender.channels["mqtt"]
    try:
        write_events(settings, [("door_forced", {})])
        started = time.monotonic()
        sender.drain(store.utc_now())
        assert time.monotonic() - started < 0.5  # nobody waits on a missing broker
        assert db.execute("SELECT status, attempts FROM outbox").fetchone() == ("pending", 0)
        with Mosquitto(tmp_path, port=port):
            sub = Subscriber(port)
            _wait(channel.ready, timeout=30)  # paho reconnects by itself
            sender.drain(store.utc_now())
            event = json.loads(_wait(lambda: sub.on("facegate/front-door/event"))[-1])
            assert event["kind"] == "door_forced"
            sub.close()
    finally:
        sender.close()


def test_mqtts_with_the_brokers_own_ca(tmp_path, make_settings, db_of):
    tls = make_tls_files(tmp_path / "tls")
    with Mosquitto(tmp_path, tls=tls) as broker:
        settings = make_settings(
            mqtt_url=f"mqtts://127.0.0.1:{broker.port}", mqtt_ca_file=str(tls["ca.crt"])
        )
        db = db_of(settings)
        sender = Sender(settings, db, build_channels(settings))
        sender.start(store.utc_now())
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-subscriber")
        sub.tls_set(ca_certs=str(tls["ca.crt"]))
        got: list[str] = []
        sub.on_connect = lambda c, *a: c.subscribe("facegate/+/event", qos=1)
        sub.on_message = lambda c, u, msg: got.append(msg.payload.decode())
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        try:
            _wait(sender.channels["mqtt"].ready)
            time.sleep(0.2)  # the subscriber's subscription is in place
            write_events(settings, [("door_held_open", {})])
            sender.drain(store.utc_now())
            assert json.loads(_wait(lambda: got)[0])["kind"] == "door_held_open"
        finally:
            sub.disconnect()
            sub.loop_stop()
            sender.close()


def test_mqtts_refuses_a_broker_it_cannot_verify(tmp_path, make_settings, db_of):
    tls = make_tls_files(tmp_path / "tls")
    with Mosquitto(tmp_path, tls=tls) as broker:
        settings = make_settings(mqtt_url=f"mqtts://127.0.0.1:{broker.port}")  # system CAs only
        db = db_of(settings)
        sender = Sender(settings, db, build_channels(settings))
        sender.start(store.utc_now())
        try:
            write_events(settings, [("door_forced", {})])
            time.sleep(1.5)  # a few connection attempts
            assert not sender.channels["mqtt"].ready()
            sender.drain(store.utc_now())
            assert db.execute("SELECT status, attempts FROM outbox").fetchone() == ("pending", 0)
        finally:
            sender.close()


def test_broker_credentials_from_the_url(tmp_path, make_settings, db_of):
    with Mosquitto(tmp_path, users={"door": "s3cr#t"}) as broker:
        wrong = mqtt_sender(make_settings, db_of, broker.port)[2]  # anonymous: refused
        good_settings = make_settings(mqtt_url=f"mqtt://door:s3cr%23t@127.0.0.1:{broker.port}")
        good = Sender(good_settings, db_of(good_settings), build_channels(good_settings))
        try:
            _wait(good.channels["mqtt"].ready)
            assert not wrong.channels["mqtt"].ready()
            assert "s3cr" not in good.channels["mqtt"].masked
        finally:
            good.close()
            wrong.close()


def test_a_retained_unlock_on_the_broker_never_opens_the_door(auth_broker, make_settings, db_of):
    """Whoever once published a *retained* UNLOCK (a misconfigured automation, an attacker with a
    minute on the broker) must not unlock the door at every (re)connect of the notify process."""
    broker = auth_broker
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    pub.username_pw_set("ha", "h4")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    pub.publish("facegate/front-door/lock/set", "UNLOCK", qos=1, retain=True).wait_for_publish(5)
    settings, db, sender = auth_sender(make_settings, db_of, broker.port, mqtt_allow_unlock=True)
    channel = sender.channels["mqtt"]
    try:
        _wait(channel.ready)
        time.sleep(0.5)  # subscribed: the broker hands out the retained message now
        assert store.pending_commands(db) == []
        # a live (not retained) command still works
        pub.publish("facegate/front-door/lock/set", "UNLOCK", qos=1).wait_for_publish(5)
        assert _wait(lambda: store.pending_commands(db))[0]["kind"] == "unlock"
    finally:
        pub.disconnect()
        pub.loop_stop()
        sender.close()


def test_erasing_a_person_clears_their_name_retained_on_the_broker(broker, make_settings, db_of):
    """``last_person`` is retained: the broker would keep serving an erased person's name to every
    new subscriber for ever. The erasure reaches it at the next tick."""
    settings, db, sender = mqtt_sender(make_settings, db_of, broker.port)
    channel = sender.channels["mqtt"]
    sub = None
    try:
        _wait(channel.ready)
        ann = store.create_person(db, "Ann Example")
        write_events(
            settings, [("access_granted", {"person_id": ann, "person_name": "Ann Example"})]
        )
        sender.drain(store.utc_now())
        channel.tick(store.utc_now())
        sub = Subscriber(broker.port)
        assert _wait(lambda: sub.on("facegate/front-door/last_person")) == ["Ann Example"]
        sub.close()

        store.delete_person(db, ann)
        channel.tick(store.utc_now())
        time.sleep(0.3)
        sub = Subscriber(broker.port)  # what a newcomer gets from the broker
        time.sleep(0.5)
        assert "Ann Example" not in sub.on("facegate/front-door/last_person")
    finally:
        if sub is not None:
            sub.close()
        sender.close()
