"""Masking secrets in status data before it is shown to a viewer or sent to the centre."""

from __future__ import annotations

import re
from typing import Any

# user:password@ after a scheme; greedy up to the last "@" before the path, so a password with
# an unencoded "@" in it (rtsp://admin:p@ss@cam) is masked whole
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s]+@", re.IGNORECASE)
# cheap IP cameras take them in the query string: snapshot.cgi?user=admin&pwd=secret
_QUERY_SECRETS = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pass|pwd|secret|token|key|auth)=)[^&;#\s]*", re.IGNORECASE
)


def redact(value: Any) -> Any:
    """``value`` with passwords in URLs (``rtsp://user:pass@camera``) masked, recursively."""
    if isinstance(value, str):
        return _QUERY_SECRETS.sub(r"\g<key>***", _URL_CREDENTIALS.sub(r"\g<scheme>***@", value))
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
