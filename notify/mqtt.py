"""MQTT with paho-mqtt: events, availability and Home Assistant discovery; the lock command in.

Topics (``P`` = ``FACEGATE_MQTT_TOPIC_PREFIX``, ``D`` = the door's name made topic-safe):

- ``P/D/event``: every event as JSON (the API's event shape plus ``event_type`` = the kind, which
  is what a Home Assistant event entity reads); QoS 1, not retained.
- ``P/D/status``: ``online`` / ``offline`` (retained; ``offline`` is also the last will, so the
  broker says it when this process dies).
- ``P/D/lock/state`` (``LOCKED``/``UNLOCKED``), ``P/D/door/state`` (``ON`` = open, ``OFF``) from
  the appliance's status row, ``P/D/last_person`` on each grant (cleared once that person is
  erased); all retained.
- ``P/D/lock/set``: Home Assistant's lock command. ``UNLOCK`` becomes a row in the commands table,
  exactly like the admin API's unlock, and only when ``FACEGATE_MQTT_ALLOW_UNLOCK`` is true; a
  retained ``UNLOCK`` (replayed by the broker at every connect) is ignored.

paho's network thread connects in the background and reconnects by itself (1 s to 60 s apart);
while the broker is away the sender leaves MQTT rows in the outbox untouched, so they go out
when it is back, and nothing else waits on it.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from loguru import logger

from appliance import store
from appliance.settings import Settings
from notify.channels import SendError
from notify.message import WHAT, mask_url

PUBLISH_TIMEOUT_S = 5.0
COMMAND_ACTOR = "home-assistant (mqtt)"
DECISION_KINDS = sorted(set(WHAT) - {"test"})


def topic_safe(name: str) -> str:
    """A door name usable as one topic level and a discovery object id."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def parse_url(url: str) -> dict[str, Any]:
    """``mqtt[s]://user:pass@host:port`` -> connection parameters."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"not an MQTT URL: {mask_url(url)}")
    return {
        "tls": parts.scheme == "mqtts",
        "host": parts.hostname,
        "port": parts.port or (8883 if parts.scheme == "mqtts" else 1883),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


class Topics:
    def __init__(self, prefix: str, door: str) -> None:
        base = f"{prefix}/{topic_safe(door)}"
        self.event = f"{base}/event"
        self.status = f"{base}/status"
        self.lock_state = f"{base}/lock/state"
        self.lock_set = f"{base}/lock/set"
        self.door_state = f"{base}/door/state"
        self.last_person = f"{base}/last_person"


def discovery(settings: Settings, topics: Topics) -> dict[str, dict[str, Any]]:
    """Home Assistant MQTT discovery configs, by config topic."""
    door = topic_safe(settings.door_name)
    node = f"facegate_{door}"
    prefix = settings.mqtt_discovery_prefix
    device = {
        "identifiers": [node],
        "name": f"Facegate {settings.door_name}",
        "manufacturer": "Facegate",
        "model": "face-recognition door",
    }
    common = {
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
    }
    return {
        f"{prefix}/lock/{node}/lock/config": {
            **common,
            "name": "Lock",
            "unique_id": f"{node}_lock",
            "state_topic": topics.lock_state,
            "command_topic": topics.lock_set,
            "payload_lock": "LOCK",
            "payload_unlock": "UNLOCK",
            "state_locked": "LOCKED",
            "state_unlocked": "UNLOCKED",
        },
        f"{prefix}/sensor/{node}/last_person/config": {
            **common,
            "name": "Last person",
            "unique_id": f"{node}_last_person",
            "state_topic": topics.last_person,
            "icon": "mdi:account-check",
        },
        f"{prefix}/binary_sensor/{node}/door/config": {
            **common,
            "name": "Door",
            "unique_id": f"{node}_door",
            "device_class": "door",
            "state_topic": topics.door_state,
            "payload_on": "ON",
            "payload_off": "OFF",
        },
        f"{prefix}/event/{node}/decision/config": {
            **common,
            "name": "Decision",
            "unique_id": f"{node}_decision",
            "state_topic": topics.event,
            "event_types": DECISION_KINDS,
        },
    }


class MqttChannel:
    name = "mqtt"

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.topics = Topics(settings.mqtt_topic_prefix, settings.door_name)
        self.conn = parse_url(settings.mqtt_url.get_secret_value())  # type: ignore[union-attr]
        self.masked = mask_url(settings.mqtt_url.get_secret_value())  # type: ignore[union-attr]
        self._db = None  # the status reader's connection (the sender's thread)
        self._published: dict[str, str] = {}
        self._lock = threading.Lock()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"facegate-{topic_safe(settings.door_name)}",
            protocol=mqtt.MQTTv311,
        )
        if self.conn["username"]:
            client.username_pw_set(self.conn["username"], self.conn["password"])
        if self.conn["tls"]:
            # the broker's certificate is checked (host name included) against the system's CAs
            # or FACEGATE_MQTT_CA_FILE for a broker with its own CA
            client.tls_set(ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None)
        client.will_set(self.topics.status, "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        client.connect_async(self.conn["host"], self.conn["port"], keepalive=30)
        client.loop_start()  # paho's thread: connects, and reconnects by itself

    # --- paho callbacks (paho's thread) ---------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            logger.warning("MQTT broker {} refused: {}", self.masked, reason_code)
            return
        logger.info("MQTT connected to {}", self.masked)
        client.publish(self.topics.status, "online", qos=1, retain=True)
        if self.s.mqtt_discovery_prefix:
            for topic, config in discovery(self.s, self.topics).items():
                client.publish(topic, json.dumps(config), qos=1, retain=True)
        client.subscribe(self.topics.lock_set, qos=1)
        with self._lock:
            self._published.clear()  # re-send the retained states on the next tick

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        logger.warning("MQTT disconnected from {} ({}); reconnecting", self.masked, reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic != self.topics.lock_set:
            return
        if msg.retain:
            # a retained command is an old one the broker replays at every subscribe: obeying it
            # would unlock the door at each (re)connect, long after whoever sent it
            logger.warning("MQTT lock command ignored: retained on the broker (clear it there)")
            return
        payload = msg.payload.decode(errors="replace").strip().upper()
        if payload != "UNLOCK":
            logger.info("MQTT lock command {!r} ignored (the door locks by itself)", payload)
            return
        if not self.s.mqtt_allow_unlock:
            logger.warning("MQTT unlock refused: FACEGATE_MQTT_ALLOW_UNLOCK is off")
            return
        db = store.open_db(self.s.db_path, migrate_schema=False)
        try:
            command_id = store.enqueue_command(db, "unlock", {}, requested_by=COMMAND_ACTOR)
            with db.conn:
                store.audit(db, COMMAND_ACTOR, "door.unlock", str(command_id))
        finally:
            db.conn.close()
        logger.info("MQTT unlock queued as command {}", command_id)

    # --- the sender's side ----------------------------------------------------------------------

    def ready(self) -> bool:
        """Connected: the sender leaves MQTT rows alone (no try counted) while this is False."""
        return self.client.is_connected()

    def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:  # not connected, queue full
            raise SendError(f"MQTT {self.masked}: {exc}") from None
        if not info.is_published():
            raise SendError(f"MQTT {self.masked}: not acknowledged in {PUBLISH_TIMEOUT_S:.0f} s")

    def send(self, event: dict[str, Any]) -> None:
        if not self.client.is_connected():
            raise SendError(f"MQTT {self.masked}: not connected")
        self._publish(self.topics.event, json.dumps({**event, "event_type": event["kind"]}))
        if event["kind"] == "access_granted" and event.get("person_name"):
            self._publish(self.topics.last_person, event["person_name"], retain=True)
            with self._lock:
                self._published[self.topics.last_person] = event["person_name"]

    def tick(self, now: datetime) -> None:
        """Mirror the door's lock and contact from the appliance's status row (retained)."""
        if not self.client.is_connected():
            return
        if self._db is None:
            self._db = store.open_db(self.s.db_path, migrate_schema=False)
        status = store.get_status(self._db, "appliance") or {}
        states = {}
        if status.get("locked") is not None:
            states[self.topics.lock_state] = "LOCKED" if status["locked"] else "UNLOCKED"
        if status.get("door_open") is not None:
            states[self.topics.door_state] = "ON" if status["door_open"] else "OFF"
        # the latest grant's name was erased (the person deleted): clear the retained name, or
        # the broker keeps handing it to every new subscriber
        last = self._db.execute(
            "SELECT person_name FROM events WHERE kind = 'access_granted' "
            "AND person_id IS NOT NULL ORDER BY ts DESC, id DESC LIMIT 1"
        ).fetchone()
        if last is not None and last[0] is None:
            states[self.topics.last_person] = ""  # an empty retained message deletes it
        for topic, value in states.items():
            with self._lock:
                if self._published.get(topic) == value:
                    continue
                self._published[topic] = value
            self.client.publish(topic, value, qos=1, retain=True)

    def close(self) -> None:
        """Say offline (retained) and disconnect cleanly."""
        try:
            if self.client.is_connected():
                self._publish(self.topics.status, "offline", retain=True)
        except SendError:
            pass
        self.client.disconnect()
        self.client.loop_stop()
        if self._db is not None:
            self._db.conn.close()
