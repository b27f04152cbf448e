"""The one typed settings object of the kiosk.

Every setting comes from the environment or ``.env`` with the ``FACEGATE_`` prefix, is validated
once at start-up, and a bad value stops start-up with a message that names the setting. Defaults
live here and nowhere else; ``.env.example`` documents each one (a test keeps the two in step).
"""

from __future__ import annotations

import ipaddress
import os
import zoneinfo
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: What is notified when FACEGATE_NOTIFY_ON is not set: the alarms, not the everyday decisions.
DEFAULT_NOTIFY_ON = (
    "door_forced",
    "door_held_open",
    "unknown_streak",
    "liveness_attack",
    "camera_down",
    "disk_low",
    "sync_failing",
)


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


def check_central_url(url: str) -> str:
    """The Supabase project URL, refused unless it is https (plain http only to a loopback host,
    as the local test gateway is): the door's password and tokens travel over it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{url!r} is not an https:// URL")
    if parts.scheme == "https":
        return url
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"must be https:// (plain http is allowed only to a loopback host), not {url!r}"
        )
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FACEGATE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
    )

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="SQLite file, snapshots and runtime files")
    store_enrol_photos: bool = Field(False, description="keep enrolment photos (biometric data!)")
    store_event_snapshots: bool = Field(False, description="keep a JPEG face crop per decision")

    # --- retention (a daily job deletes what is older) -----------------------------------------
    events_keep_days: int = Field(
        90, ge=0, description="delete entry-log events older than this, once synced (0 = keep)"
    )
    snapshots_keep_days: int = Field(
        30, ge=0, description="delete event snapshots (face crops) older than this (0 = keep)"
    )
    live_frame_keep_seconds: int = Field(
        300, ge=1, description="delete the live-view JPEG when it is older than this"
    )
    min_free_mb: int = Field(
        500, ge=0, description="stop writing snapshots while the data disk has less free space"
    )

    # --- camera and door identity --------------------------------------------------------------
    camera_source: str = Field(
        "0", description="camera index, /dev/videoN, rtsp:// or http:// URL, video file or folder"
    )
    door_name: str = Field("front-door", min_length=1, description="this door's name in the log")
    door_timezone: str = Field("UTC", description="IANA time zone used by weekly schedules")

    # --- recognition ---------------------------------------------------------------------------
    match_threshold: float = Field(0.55, gt=0, lt=1.5, description="max face distance for a match")
    match_margin: float = Field(
        0.08, ge=0, lt=1, description="min distance gap between best and second-best person"
    )
    match_cohort_ratio: float = Field(
        0.7,
        gt=0,
        le=1,
        description="max ratio of the best distance to the mean of the 5 nearest others (1 = off)",
    )
    match_background_cohort: bool = Field(
        True,
        description="also count 8 shipped faces of people not enrolled among those others",
    )
    strong_match_threshold: float = Field(
        0.40,
        ge=0,
        lt=1.5,
        description="one encoding at most this far (with margin and cohort ratio) is a vote on "
        "its own; liveness still required (0 = off)",
    )
    votes_needed: int = Field(2, ge=1, description="k: agreeing encodings needed in a track")
    votes_window: int = Field(4, ge=1, description="n: the last n encodings of a track vote")
    cooldown_seconds: float = Field(8.0, ge=0, description="no second grant of a person within")
    detect_width: int = Field(640, ge=160, description="frames are downscaled to this width")
    detect_upsample: int = Field(1, ge=0, le=2, description="HOG upsampling (finds smaller faces)")
    detector: Literal["hog", "blazeface"] = Field(
        "hog",
        description="whole-frame face search: hog (dlib) or blazeface (OpenCV DNN, ~4x less CPU)",
    )
    detect_every: int = Field(
        5, ge=1, description="search the whole frame every Nth frame (tracked faces: every frame)"
    )
    reencode_ms: int = Field(1000, ge=0, description="re-encode a decided track at most this often")
    catch_up_s: float = Field(
        1.5,
        ge=0,
        le=5,
        description="while a face is being decided and the CPU falls behind the camera, work "
        "through up to this many seconds of missed frames in order (0 = newest frame only)",
    )
    min_face_px: int = Field(40, ge=20, description="smaller faces are not encoded")
    min_sharpness: float = Field(
        15.0, ge=0, description="min variance of the Laplacian of a face crop (blur check)"
    )
    motion_threshold: float = Field(
        2.0, ge=0, description="mean abs pixel change (0-255) below which a frame is skipped"
    )
    liveness: Literal["off", "motion", "strict"] = Field(
        "motion", description="anti-spoofing: off, motion (non-rigid landmarks) or strict"
    )

    # --- door hardware -------------------------------------------------------------------------
    pin_factory: str = Field(
        "auto", description="auto, mock, or a gpiozero factory: lgpio, rpigpio, pigpio, native"
    )
    relay_pin: str = Field("GPIO17", description="GPIO pin driving the lock relay")
    relay_active_high: bool = Field(True, description="relay energises on a high level")
    lock_type: Literal["fail_secure", "fail_safe"] = Field(
        "fail_secure",
        description="fail_secure: energise relay to unlock; fail_safe: energise to hold locked",
    )
    unlock_seconds: float = Field(3.0, gt=0, le=60, description="relay pulse length")
    door_contact_pin: str | None = Field(None, description="door contact switch (closed = shut)")
    exit_button_pin: str | None = Field(None, description="request-to-exit button")
    led_pin: str | None = Field(None, description="status LED")
    buzzer_pin: str | None = Field(None, description="buzzer for denials and alarms")
    held_open_seconds: float = Field(30.0, gt=0, description="door open longer raises held-open")

    # --- admin API and console ---------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="admin API bind address")
    api_port: int = Field(8080, ge=1, le=65535, description="admin API port")
    api_max_upload_mb: float = Field(10.0, gt=0, description="largest accepted upload")
    api_behind_tls: bool = Field(
        False, description="set when a TLS reverse proxy fronts a non-loopback API"
    )
    ui_api_url: str = Field("http://127.0.0.1:8080", description="where the console finds the API")
    ui_port: int = Field(8501, ge=1, le=65535, description="console port")

    # --- central sync (Supabase) ---------------------------------------------------------------
    supabase_url: str | None = Field(None, description="Supabase project URL; unset = sync off")
    supabase_anon_key: SecretStr | None = Field(None, description="the project's public anon key")
    device_email: str | None = Field(None, description="this door's Supabase Auth user")
    device_password: SecretStr | None = Field(None, description="this door's Auth password")
    sync_pull_seconds: float = Field(30.0, gt=0, description="pull central changes every")
    sync_push_seconds: float = Field(5.0, gt=0, description="push new events within")
    sync_heartbeat_seconds: float = Field(60.0, gt=0, description="heartbeat every")
    sync_batch_size: int = Field(500, ge=1, le=5000, description="rows per push/pull page")

    # --- alerts the door raises itself (each an event kind) -------------------------------------
    alert_unknown_count: int = Field(
        5, ge=0, description="unknown_streak after this many unknown faces (0 = off)..."
    )
    alert_unknown_minutes: float = Field(2.0, gt=0, description="...within this many minutes")
    alert_liveness_count: int = Field(
        3, ge=0, description="liveness_attack after this many liveness failures (0 = off)..."
    )
    alert_liveness_minutes: float = Field(10.0, gt=0, description="...within this many minutes")
    alert_camera_down_seconds: float = Field(
        60.0, gt=0, description="camera_down when no frame for this long"
    )
    alert_disk_free_percent: float = Field(
        10.0, ge=0, lt=100, description="disk_low when the data folder's disk has less free"
    )
    alert_sync_failing_minutes: float = Field(
        15.0, gt=0, description="sync_failing when sync has not succeeded for this long"
    )

    # --- notifications, webhook, MQTT (the notify process) -------------------------------------
    notify_urls: SecretStr | None = Field(
        None,
        description="Apprise URLs for people (mailtos://, twilio://, tgram://, ...), "
        "separated by spaces or commas; unset = no notifications",
    )
    notify_on: str = Field(
        ",".join(DEFAULT_NOTIFY_ON),
        description="event kinds and alerts that are notified (comma-separated)",
    )
    notify_rate_limit: int = Field(
        5, ge=1, description="notifications per kind per window; the rest become one summary"
    )
    notify_rate_window_minutes: float = Field(10.0, gt=0, description="the rate limit's window")
    notify_retry_max_seconds: float = Field(
        600.0, gt=0, description="longest wait between two tries of one message"
    )
    notify_give_up_hours: float = Field(
        48.0, gt=0, description="a message still failing after this long is marked failed"
    )
    webhook_url: SecretStr | None = Field(
        None, description="receives every event as signed JSON (POST); unset = off"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the X-Facegate-Signature header"
    )
    mqtt_url: SecretStr | None = Field(
        None, description="mqtt://user:pass@host:1883 or mqtts://...; unset = MQTT off"
    )
    mqtt_ca_file: Path | None = Field(
        None, description="CA certificate of an mqtts:// broker (default: the system's CAs)"
    )
    mqtt_topic_prefix: str = Field("facegate", min_length=1, description="topics: PREFIX/DOOR/...")
    mqtt_discovery_prefix: str = Field(
        "homeassistant", description="Home Assistant discovery prefix (empty = no discovery)"
    )
    mqtt_allow_unlock: bool = Field(
        False, description="let the Home Assistant lock entity unlock the door (off by default)"
    )

    # --- logging -------------------------------------------------------------------------------
    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR"] = Field(
        "INFO", description="TRACE, DEBUG, INFO, SUCCESS, WARNING or ERROR"
    )
    log_file: Path | None = Field(None, description="also log to this file (rotated)")
    log_rotate_mb: int = Field(10, ge=1, description="rotate the log file at this size")
    log_keep_files: int = Field(5, ge=1, description="keep this many rotated (gzipped) log files")

    @field_validator(
        "door_contact_pin",
        "exit_button_pin",
        "led_pin",
        "buzzer_pin",
        "log_file",
        "supabase_url",
        "supabase_anon_key",
        "device_email",
        "device_password",
        "notify_urls",
        "webhook_url",
        "webhook_secret",
        "mqtt_url",
        "mqtt_ca_file",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value):
        """``FACEGATE_LOG_FILE=`` with nothing after it means "not set", as in .env.example."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("supabase_url")
    @classmethod
    def _central_is_https(cls, value: str | None) -> str | None:
        return None if value is None else check_central_url(value)

    @field_validator("door_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("notify_on")
    @classmethod
    def _kinds_list(cls, value: str) -> str:
        kinds = [k.strip() for k in value.replace(" ", ",").split(",") if k.strip()]
        bad = [k for k in kinds if not k.replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"not an event kind: {', '.join(bad)}")
        return ",".join(kinds)

    @field_validator("webhook_url", "mqtt_url")
    @classmethod
    def _url_scheme(cls, value, info):
        if value is None:
            return value
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        schemes = (
            ("http://", "https://") if info.field_name == "webhook_url" else ("mqtt://", "mqtts://")
        )
        if not text.lower().startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return value

    @model_validator(mode="after")
    def _webhook_signed(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(
                "FACEGATE_WEBHOOK_URL needs FACEGATE_WEBHOOK_SECRET (receivers check the signature)"
            )
        return self

    @model_validator(mode="after")
    def _mqtt_unlock_needs_auth(self) -> Settings:
        # anyone who can publish to PREFIX/DOOR/lock/set unlocks the door: never on a broker
        # that lets anonymous clients in
        if self.mqtt_allow_unlock and not (
            self.mqtt_url and urlsplit(self.mqtt_url.get_secret_value()).username
        ):
            raise ValueError(
                "FACEGATE_MQTT_ALLOW_UNLOCK needs a broker that checks passwords: put user:password"
                " in FACEGATE_MQTT_URL (and restrict who may publish to the lock/set topic)"
            )
        return self

    @model_validator(mode="after")
    def _votes_fit_window(self) -> Settings:
        if self.votes_needed > self.votes_window:
            raise ValueError(
                f"FACEGATE_VOTES_NEEDED ({self.votes_needed}) must not exceed "
                f"FACEGATE_VOTES_WINDOW ({self.votes_window})"
            )
        return self

    @property
    def sync_configured(self) -> bool:
        return bool(
            self.supabase_url
            and self.supabase_anon_key
            and self.device_email
            and self.device_password
        )

    @property
    def notify_kinds(self) -> list[str]:
        return [k for k in self.notify_on.split(",") if k]

    @property
    def notify_url_list(self) -> list[str]:
        """The Apprise URLs, one per entry (spaces, commas or newlines between them)."""
        if not self.notify_urls:
            return []
        text = self.notify_urls.get_secret_value()
        return [u for u in text.replace(",", " ").split() if u]

    # --- derived paths -------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.data_dir / "facegate.db"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def photo_dir(self) -> Path:
        return self.data_dir / "photos"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.door_timezone)


#: FACEGATE_ variables that are not settings of a door: the tests' fixture folder, the admin's
#: service-role key (used by `python -m sync provision`, never by a door), test-only variables.
NOT_SETTINGS = {"FACEGATE_FIXTURES", "FACEGATE_SUPABASE_SERVICE_ROLE_KEY"}


def _unknown_environment_keys() -> list[str]:
    """FACEGATE_* variables in the environment that name no setting (typos).

    pydantic-settings refuses unknown keys in .env but silently ignores unknown environment
    variables; a mistyped ``FACEGATE_LOCK_TYP=fail_safe`` in a systemd unit must not leave the
    door quietly on the default.
    """
    known = {f"FACEGATE_{name.upper()}" for name in Settings.model_fields}
    return sorted(
        key
        for key in os.environ
        if key.upper().startswith("FACEGATE_")
        and key.upper() not in known
        and key.upper() not in NOT_SETTINGS
        and not key.upper().startswith("FACEGATE_TEST_")
    )


def load_settings(**overrides) -> Settings:
    """Load and validate the settings; raise :class:`SettingsError` naming each bad setting."""
    unknown = _unknown_environment_keys()
    if unknown:
        raise SettingsError(
            "invalid settings: "
            + "; ".join(f"{key}: not a Facegate setting (a typo?)" for key in unknown)
        )
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "not a Facegate setting (a typo?)"
            if loc == "settings":
                name = loc
            elif loc.lower().startswith("facegate_"):  # an unknown key from .env
                name = loc.upper()
            else:
                name = f"FACEGATE_{loc.upper()}"
            problems.append(message if loc == "settings" else f"{name}: {message}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
