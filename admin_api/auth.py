"""Bearer tokens (stored only as sha256 hashes), roles, and the failed-authentication limiter.

Roles: ``admin`` may do everything, ``viewer`` may read the entry log, status and people. Every
route needs a token except ``/api/v1/health``; a route is admin-only unless its view is marked
with :func:`viewer_allowed`, so a route added without thought is closed rather than open.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlite_utils
from flask import g

from appliance import store

ROLES = ("admin", "viewer")
TOKEN_PREFIX = "fg_"
#: last_used_at is written at most this often per token, so reads do not become writes.
LAST_USED_EVERY_S = 60.0

F = TypeVar("F", bound=Callable[..., Any])


def viewer_allowed(view: F) -> F:
    """Mark a read-only view that a viewer token may call."""
    view.min_role = "viewer"  # type: ignore[attr-defined]
    return view


def public(view: F) -> F:
    """Mark a view that answers without a token (only the health check)."""
    view.min_role = None  # type: ignore[attr-defined]
    return view


def required_role(view: Callable[..., Any] | None) -> str | None:
    """The least role a view needs: None (public), "viewer" or "admin" (the default)."""
    return getattr(view, "min_role", "admin") if view is not None else "admin"


def role_allows(role: str, needed: str) -> bool:
    return needed == "viewer" or role == "admin"


def actor() -> str:
    """The name of the token making the current request: the audit log's actor."""
    return g.token.name


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: str


class TokenError(ValueError):
    pass


def create_token(db: sqlite_utils.Database, name: str, role: str) -> tuple[TokenInfo, str]:
    """Create a token; the plain token is returned once and never stored."""
    name = name.strip()
    if role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 100:
        raise TokenError("a token needs a name of 1 to 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    info = TokenInfo(store.new_id(), name, role)
    with db.conn:
        # names are the audit log's actors: two live tokens may not share one
        clash = db.execute(
            "SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL", [name]
        ).fetchone()
        if clash:
            raise TokenError(f"a live token named {name!r} exists; revoke it or pick another name")
        db["api_tokens"].insert(
            {
                "id": info.id,
                "name": name,
                "role": role,
                "token_hash": hash_token(token),
                "created_at": store.to_iso(store.utc_now()),
            }
        )
        store.audit(db, "cli", "token.create", info.id, {"name": name, "role": role})
    return info, token


def list_tokens(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens "
            "ORDER BY created_at"
        )
    )


def revoke_token(db: sqlite_utils.Database, name_or_id: str) -> TokenInfo:
    """Revoke the live token with this id or name; it stops working on its next request."""
    rows = list(
        db.query(
            "SELECT id, name, role FROM api_tokens WHERE (id = ? OR name = ?) "
            "AND revoked_at IS NULL",
            [name_or_id, name_or_id],
        )
    )
    if not rows:
        raise TokenError(f"no live token with id or name {name_or_id!r}")
    info = TokenInfo(**rows[0])
    with db.conn:
        db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ?",
            [store.to_iso(store.utc_now()), info.id],
        )
        store.audit(db, "cli", "token.revoke", info.id, {"name": info.name})
    return info


class TokenChecker:
    """Looks a presented token up on every request (revocation by another process is immediate)."""

    def __init__(self) -> None:
        self._last_written: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, db: sqlite_utils.Database, token: str) -> TokenInfo | None:
        # looked up by the sha256 of the token: how long the lookup takes says nothing about
        # how close a guess came (unlike comparing the plain tokens byte by byte)
        row = db.execute(
            "SELECT id, name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            [hash_token(token)],
        ).fetchone()
        if row is None:
            return None
        info = TokenInfo(*row)
        now = time.monotonic()
        with self._lock:
            due = now - self._last_written.get(info.id, -LAST_USED_EVERY_S) >= LAST_USED_EVERY_S
            if due:
                self._last_written[info.id] = now
        if due:
            with db.conn:
                db.execute(
                    "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                    [store.to_iso(store.utc_now()), info.id],
                )
        return info


class FailureLimiter:
    """Sliding window of failed authentications per client address.

    An address is throttled once it has ``limit`` failures within ``window_s`` seconds, and stays
    so until the oldest of the last ``limit`` leaves the window. It throttles failures only: the
    API still checks (and accepts) a valid token from a throttled address, so a stranger guessing
    from the admins' own address (127.0.0.1 behind a local proxy) cannot lock them out, while the
    guesser's further attempts are refused with 429. Tokens are 256-bit random values, so the
    limit is about noise and load, not about making guessing feasible. Pure bookkeeping: callers
    pass ``now``.
    """

    def __init__(self, limit: int = 10, window_s: float = 60.0, max_addresses: int = 10_000):
        self.limit = limit
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, address: str, now: float) -> deque[float] | None:
        q = self._failures.get(address)
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[address]
            return None
        return q

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again (0 when it is not blocked)."""
        with self._lock:
            q = self._trim(address, now)
            if q is None or len(q) < self.limit:
                return 0.0
            return max(0.0, q[-self.limit] + self.window_s - now)

    def record_failure(self, address: str, now: float) -> None:
        with self._lock:
            if address not in self._failures and len(self._failures) >= self.max_addresses:
                # a flood of addresses: forget the stalest rather than grow without bound
                for stale in list(self._failures)[: self.max_addresses // 10 or 1]:
                    del self._failures[stale]
            q = self._trim(address, now)
            if q is None:
                # only the last ``limit`` failures matter: memory stays bounded per address
                q = self._failures[address] = deque(maxlen=self.limit)
            q.append(now)
