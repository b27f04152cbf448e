"""Real servers the notify tests talk to: an SMTP server (aiosmtpd), an HTTP receiver
(http.server), and a Mosquitto broker on a free port with its own config."""

from __future__ import annotations

import email
import json
import shutil
import socket
import subprocess
import threading
import time
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """aiosmtpd on a free port; ``messages`` are the parsed e-mails received."""

    def __init__(self, port: int | None = None, hold: threading.Event | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self.port = port or free_port()
        self.hold = hold  # a slow server: each message waits for this event before "250 OK"
        self.waiting = threading.Event()  # set when a message is being held
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.hold is not None:
            import asyncio

            self.waiting.set()
            await asyncio.get_running_loop().run_in_executor(None, self.hold.wait)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def url(self) -> str:
        return (
            f"mailto://127.0.0.1:{self.port}?from=door@example.com"
            "&to=guard@example.com&smtp=127.0.0.1"
        )


class HttpReceiver:
    """A local HTTP server recording each POST (headers, body); answers ``status``."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.status, self.delay = status, delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    (dict(self.headers, Method=self.command, Path=self.path), body)
                )
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"{}")

            do_PUT = do_POST  # noqa: N815 (ntfy uploads attachments with PUT)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def json(self, i: int) -> dict:
        return json.loads(self.requests[i][1])


def make_tls_files(folder: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {n: folder / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")}
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(files["ca.key"]),
        "-out",
        str(files["ca.crt"]),
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        str(files["server.key"]),
        "-out",
        str(files["server.csr"]),
    )
    run(
        "x509",
        "-req",
        "-in",
        str(files["server.csr"]),
        "-CA",
        str(files["ca.crt"]),
        "-CAkey",
        str(files["ca.key"]),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(files["server.crt"]),
    )
    return files


class Mosquitto:
    """Debian's mosquitto on a free port (anonymous, localhost only), stopped on exit.

    With ``tls`` (files from :func:`make_tls_files`) the listener speaks MQTT over TLS.
    """

    def __init__(
        self,
        tmp: Path,
        port: int | None = None,
        tls: dict | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.tmp = tmp
        self.tls = tls
        self.users = users  # name -> password; then anonymous clients are refused
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Mosquitto:
        import getpass

        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            import pytest

            pytest.skip("mosquitto not installed (`scripts/system_deps.sh test` installs it)")
        conf = self.tmp / f"mosquitto-{self.port}.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self.users else 'true'}",
            "persistence false",
            f"user {getpass.getuser()}",  # run as root, mosquitto would drop to a user that
            # cannot read the test's key files
        ]
        if self.tls:
            lines += [
                f"cafile {self.tls['ca.crt']}",
                f"certfile {self.tls['server.crt']}",
                f"keyfile {self.tls['server.key']}",
            ]
        if self.users:
            passwords = self.tmp / f"mosquitto-{self.port}.passwd"
            passwords.write_text("")
            for name, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwords), name, password],
                    check=True,
                    capture_output=True,
                )
            lines.append(f"password_file {passwords}")
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("mosquitto did not start")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None
