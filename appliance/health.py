"""The machine's own health, as far as it can be read: CPU temperature, free disk, and on a
Raspberry Pi undervoltage and throttling (``vcgencmd get_throttled`` or the firmware's sysfs file).

Published in the kiosk's ``device_status`` row, so the API, the console and the central heartbeat
see a door whose power supply sags or whose SD card fills long before it fails.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from appliance.retention import disk_free_mb

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
THROTTLED_SYSFS = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
SAMPLE_EVERY_S = 15.0

#: Bits of the Pi firmware's throttled word (https://www.raspberrypi.com/documentation/).
THROTTLE_BITS = {
    0: "undervoltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "undervoltage_occurred",
    17: "arm_frequency_capped_occurred",
    18: "throttling_occurred",
    19: "soft_temperature_limit_occurred",
}


def decode_throttled(word: int) -> list[str]:
    """The names of the bits set in the firmware's throttled word (empty: all is well)."""
    return [name for bit, name in THROTTLE_BITS.items() if word & (1 << bit)]


def parse_throttled(text: str) -> int | None:
    """``throttled=0x50005`` (vcgencmd) or ``50005`` (sysfs) -> the word; None if unreadable."""
    value = text.strip().split("=")[-1].strip()
    try:
        return int(value, 16)
    except ValueError:
        return None


def read_cpu_temp_c(path: Path = THERMAL) -> float | None:
    try:
        return round(int(path.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def read_throttled() -> int | None:
    try:
        return parse_throttled(THROTTLED_SYSFS.read_text())
    except OSError:
        pass
    if shutil.which("vcgencmd"):
        try:
            r = subprocess.run(
                ["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=2
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return parse_throttled(r.stdout) if r.returncode == 0 else None
    return None


def sample(data_dir: Path) -> dict[str, Any]:
    """One reading of everything readable here; unreadable values are None, never guessed."""
    word = read_throttled()
    try:
        free = round(disk_free_mb(data_dir))
    except OSError:
        free = None
    return {
        "cpu_temp_c": read_cpu_temp_c(),
        "disk_free_mb": free,
        "throttled": None if word is None else decode_throttled(word),
    }


class HealthSampler:
    """Caches :func:`sample` so the twice-a-second status row does not fork vcgencmd each time."""

    def __init__(self, data_dir: Path, every_s: float = SAMPLE_EVERY_S) -> None:
        self.data_dir, self.every_s = data_dir, every_s
        self._at = -float("inf")
        self._last: dict[str, Any] = {}

    def get(self) -> dict[str, Any]:
        if time.monotonic() - self._at >= self.every_s:
            self._last = sample(self.data_dir)
            self._at = time.monotonic()
        return self._last
