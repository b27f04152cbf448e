"""Serving the app with waitress: bind, warn about exposure, stop cleanly."""

from __future__ import annotations

import ipaddress
import socket
import threading

from flask import Flask
from loguru import logger
from waitress.server import create_server

from appliance.settings import Settings

THREADS = 4


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:  # a host name: loopback only if every address it resolves to is
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(
            ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
        )


def exposure_warning(settings: Settings) -> str | None:
    """The start-up warning for a bind beyond loopback without TLS in front, else None."""
    if is_loopback(settings.api_host) or settings.api_behind_tls:
        return None
    return (
        f"the admin API listens on {settings.api_host}:{settings.api_port}, beyond this machine, "
        "and tokens travel in clear text: put a TLS reverse proxy in front (see the README) and "
        "set FACEGATE_API_BEHIND_TLS=true, or bind to 127.0.0.1"
    )


class ApiServer:
    """A waitress server for ``app`` that runs in a thread or in the foreground and stops cleanly.

    Bodies larger than the upload limit are refused by Flask from the Content-Length header; the
    waitress limit (twice as much) is only a backstop, and waitress spools big bodies to a
    temporary file rather than memory.
    """

    def __init__(
        self, app: Flask, settings: Settings, *, host: str | None = None, port: int | None = None
    ) -> None:
        max_body = int(settings.api_max_upload_mb * 1024 * 1024)
        options = {}
        if settings.api_behind_tls:
            # the proxy on this machine tells us the real client address (rate limiting)
            options = {
                "trusted_proxy": "127.0.0.1",
                "trusted_proxy_headers": "x-forwarded-for x-forwarded-proto",
                "clear_untrusted_proxy_headers": True,
            }
        self._server = create_server(
            app,
            host=host if host is not None else settings.api_host,
            port=port if port is not None else settings.api_port,
            threads=THREADS,
            max_request_body_size=2 * max_body + 1024 * 1024,
            ident="facegate",
            **options,
        )
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        warning = exposure_warning(settings)
        if warning:
            logger.warning(warning)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        host = self._server.effective_host  # type: ignore[union-attr]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        logger.info("admin API listening on {}", self.url)
        try:
            self._server.run()
        except (OSError, ValueError):
            # stop() closes the sockets under the select loop; only then is this expected
            if not self._stopping.is_set():
                raise
        logger.info("admin API stopped")

    def start(self) -> ApiServer:
        """Serve in a background thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self.serve_forever, name="admin-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, finish the running requests, and end the serving loop."""
        self._stopping.set()
        self._server.task_dispatcher.shutdown()  # type: ignore[union-attr]
        self._server.close()  # type: ignore[union-attr]
        from waitress import wasyncore

        wasyncore.close_all(self._server._map)  # type: ignore[union-attr]
        if self._thread is not None:
            self._thread.join(timeout=5)
