"""The door's connection to its Supabase project: one signed-in session, RPC calls, clear errors.

supabase-py refreshes tokens from a timer thread that gives up silently, and ``rpc()`` never
refreshes by itself (see SUPABASE-NOTES.md). So this client owns the session: the timer is off,
every call first makes sure the session is fresh, a "JWT expired" reply refreshes (or signs in
again) and retries once, and a refused refresh ("Already Used", revoked) falls back to signing
in with the door's password. Errors come out as three kinds the sync loop acts on:
:class:`Transient` (retry later), :class:`Refused` (the server judged the request) and
:class:`AuthFailed` (the door's credentials are wrong: nothing to retry until fixed).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from loguru import logger
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthError, AuthRetryableError


class SyncError(RuntimeError):
    """Base of the errors the sync loop handles."""


class Transient(SyncError):
    """Network trouble or a server hiccup: the same request may succeed later."""


class Refused(SyncError):
    """The server refused the request itself (bad input, no permission)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class AuthFailed(SyncError):
    """The door cannot sign in: wrong e-mail/password, user deleted or not provisioned."""


_EXPIRED_CODES = {"PGRST303", "PGRST301"}


def classify_api_error(err: APIError) -> SyncError:
    """PostgREST's error code -> what the loop should do about it."""
    code = str(err.code or "")
    text = f"{code}: {err.message or ''}".strip()
    if len(code) == 3 and code.isdigit() and (int(code) >= 500 or int(code) in (408, 429)):
        return Transient(f"HTTP {text}")
    if code.startswith("08") or code in (
        "PGRST000",
        "PGRST001",
        "PGRST002",
        "57014",
        "40001",
        "40P01",
        "53300",
    ):
        return Transient(text)
    return Refused(text, code)


def make_http_client(timeout: float) -> httpx.Client:
    """HTTP/1.1, few keep-alive connections, a short connect timeout (see SUPABASE-NOTES.md)."""
    return httpx.Client(
        http1=True,
        http2=False,
        timeout=httpx.Timeout(timeout, connect=min(3.0, timeout)),
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
    )


class CentralClient:
    """A door signed in to the central project, calling its RPC functions."""

    def __init__(
        self, url: str, anon_key: str, email: str, password: str, *, timeout: float = 10.0
    ) -> None:
        self._email = email
        self._password = password
        self._http = make_http_client(timeout)
        self._sb = create_client(
            url,
            anon_key,
            ClientOptions(httpx_client=self._http, auto_refresh_token=False, persist_session=False),
        )
        self._signed_in = False

    def close(self) -> None:
        self._http.close()

    # --- session --------------------------------------------------------------------------------

    def sign_in(self) -> None:
        try:
            res = self._sb.auth.sign_in_with_password(
                {"email": self._email, "password": self._password}
            )
        except AuthRetryableError as exc:
            raise Transient(f"sign-in: {exc}") from exc
        except AuthApiError as exc:
            if exc.status >= 500 or exc.status in (408, 429):
                raise Transient(f"sign-in: {exc}") from exc
            raise AuthFailed(f"sign-in as {self._email} refused: {exc}") from exc
        except AuthError as exc:
            raise Transient(f"sign-in: {exc}") from exc
        except httpx.TransportError as exc:
            raise Transient(f"sign-in: {type(exc).__name__}: {exc}") from exc
        self._signed_in = True
        expires_at = res.session.expires_at if res.session else None
        if expires_at and expires_at < time.time():
            # The token is already expired by our clock: the door's clock is wrong (no RTC/NTP
            # yet). Calls still work while the server accepts the token; sign-in is the fallback.
            logger.warning(
                "the door's clock looks wrong: a fresh token already expired at {}", expires_at
            )
        logger.info("signed in to the central store as {}", self._email)

    def refresh(self) -> None:
        """A new access token; a refused refresh (reused or revoked token) signs in again."""
        try:
            self._sb.auth.refresh_session()
            logger.info("central session refreshed")
        except AuthRetryableError as exc:
            raise Transient(f"token refresh: {exc}") from exc
        except (AuthApiError, AuthError) as exc:
            logger.warning("token refresh refused ({}); signing in again", exc)
            self.sign_in()
        except httpx.TransportError as exc:
            raise Transient(f"token refresh: {type(exc).__name__}: {exc}") from exc

    def ensure_session(self) -> None:
        """Sign in if needed; refresh a token that expires within seconds (supabase-py's rule)."""
        if not self._signed_in:
            self.sign_in()
            return
        try:
            session = self._sb.auth.get_session()  # refreshes near expiry, raises on failure
        except AuthRetryableError as exc:
            raise Transient(f"token refresh: {exc}") from exc
        except (AuthApiError, AuthError) as exc:
            logger.warning("token refresh refused ({}); signing in again", exc)
            self.sign_in()
            return
        except httpx.TransportError as exc:
            raise Transient(f"token refresh: {type(exc).__name__}: {exc}") from exc
        if session is None:
            self.sign_in()

    # --- calls ----------------------------------------------------------------------------------

    def call(self, fn: str, params: dict[str, Any]) -> Any:
        """Call an RPC function once (plus one retry after an expired token)."""
        self.ensure_session()
        try:
            return self._execute(fn, params)
        except APIError as err:
            if str(err.code) not in _EXPIRED_CODES:
                raise classify_api_error(err) from err
            logger.info("central token rejected ({}); refreshing and retrying {}", err.code, fn)
        self.refresh()
        try:
            return self._execute(fn, params)
        except APIError as err:
            raise classify_api_error(err) from err

    def _execute(self, fn: str, params: dict[str, Any]) -> Any:
        try:
            return self._sb.rpc(fn, params).execute().data
        except httpx.TransportError as exc:
            # connect/read timeouts, refused or dropped connections: the request may or may not
            # have reached the server; every RPC the door calls is safe to repeat.
            raise Transient(f"{fn}: {type(exc).__name__}: {exc}") from exc
