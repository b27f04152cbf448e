"""The console's own settings: the few FACEGATE_ variables it reads, and nothing of the door.

The console runs on the kiosk next to the door or on a laptop far from it, so it must not import
the door's package (``appliance``) just to read five values. Same environment and ``.env`` as the
door; every other FACEGATE_ variable is the door's business and is ignored here (the door checks
those for typos itself).
"""

from __future__ import annotations

import zoneinfo

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettingsError(ValueError):
    """A console setting is invalid; the message names the FACEGATE_ variable."""


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FACEGATE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    ui_api_url: str = Field("http://127.0.0.1:8080", description="where the console finds the API")
    ui_port: int = Field(8501, ge=1, le=65535, description="console port")
    api_max_upload_mb: float = Field(
        10.0, gt=0, description="the API's upload limit: the console refuses bigger uploads first"
    )
    door_timezone: str = Field("UTC", description="IANA time zone the console shows times in")
    door_name: str = Field(
        "front-door", min_length=1, description="the Door page's title, also while the API is down"
    )

    @field_validator("door_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.door_timezone)


def load_console_settings(**overrides) -> ConsoleSettings:
    """Load the console's settings; raise :class:`ConsoleSettingsError` naming each bad one."""
    try:
        return ConsoleSettings(**overrides)
    except ValidationError as exc:
        problems = [
            f"FACEGATE_{'.'.join(str(p) for p in e['loc']).upper()}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise ConsoleSettingsError("invalid settings: " + "; ".join(problems)) from None
