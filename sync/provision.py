"""Provisioning a door (run by an admin): its Auth user, its device row, its .env lines.

Needs the project's service-role key, read from the admin's environment
(``FACEGATE_SUPABASE_SERVICE_ROLE_KEY``): it never goes into a door's settings.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from loguru import logger
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthError

from appliance.settings import check_central_url
from sync.client import make_http_client

SERVICE_KEY_ENV = "FACEGATE_SUPABASE_SERVICE_ROLE_KEY"


class ProvisionError(RuntimeError):
    pass


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def provision_door(
    url: str,
    anon_key: str,
    service_key: str,
    site: str,
    door: str,
    *,
    email: str | None = None,
    password: str | None = None,
    email_domain: str = "doors.facegate.local",
    timeout: float = 15.0,
) -> dict[str, str]:
    """Create the site if needed, the door's Auth user and device row; return its .env lines."""
    if not site.strip() or not door.strip():
        raise ProvisionError("site and door names must not be empty")
    try:  # the service-role key travels over it
        check_central_url(url)
    except ValueError as exc:
        raise ProvisionError(f"Supabase URL {exc}") from None
    email = email or f"door-{slug(site)}-{slug(door)}@{email_domain}"
    password = password or secrets.token_urlsafe(24)
    http = make_http_client(timeout)
    try:
        admin = create_client(
            url,
            service_key,
            ClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False),
        )
        user = _create_user(admin, email, password, site, door)
        ids = _register_device(admin, user.id, site, door)
    finally:
        http.close()
    logger.info("provisioned door {} at site {} (device {})", door, site, ids.get("device_id"))
    return {
        "FACEGATE_SUPABASE_URL": url,
        "FACEGATE_SUPABASE_ANON_KEY": anon_key,
        "FACEGATE_DEVICE_EMAIL": email,
        "FACEGATE_DEVICE_PASSWORD": password,
        "FACEGATE_DOOR_NAME": door,
    }


def _create_user(admin: Any, email: str, password: str, site: str, door: str) -> Any:
    """The door's Auth user, its site and door in its app metadata."""
    try:
        return admin.auth.admin.create_user(
            {
                "email": email,
                "password": password,
                "email_confirm": True,
                "app_metadata": {"facegate_site": site, "facegate_door": door},
            }
        ).user
    except AuthError as exc:
        raise ProvisionError(f"could not create the Auth user {email}: {exc}") from exc


def _register_device(admin: Any, user_id: str, site: str, door: str) -> dict[str, Any]:
    """The site (if new) and the device row; on failure the Auth user is removed again."""
    try:
        return (
            admin.rpc(
                "provision_device", {"site_name": site, "door_name": door, "user_id": user_id}
            )
            .execute()
            .data
        )
    except APIError as exc:
        try:  # leave no orphan user behind
            admin.auth.admin.delete_user(user_id)
        except AuthError as cleanup:
            logger.warning("could not remove the Auth user {}: {}", user_id, cleanup)
        raise ProvisionError(
            f"could not register door {door!r} at site {site!r}: {exc.message or exc}"
        ) from exc
