"""Logging set-up: loguru to stderr (and a rotated file when configured), with door context.

Production logging never writes a secret: passwords in URLs (a camera's ``rtsp://user:pass@``)
are masked in every message, ``diagnose`` is off (it would print the local variables of a
traceback, tokens and URLs included) and the log file is owner-only.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import traceback

from loguru import logger

from appliance.private import open_private, private_dir
from appliance.redact import redact
from appliance.settings import Settings

FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | "
    "{extra[door]} | <cyan>{name}</cyan> - <level>{message}</level>"
    " <dim>{extra[ctx]}</dim>{extra[exc]}"
)


def _with_context(record) -> None:
    extra = record["extra"]
    extra.setdefault("door", "-")
    record["message"] = redact(record["message"])
    ctx = " ".join(
        f"{k}={v}" for k, v in extra.items() if k not in ("door", "ctx", "exc") and v is not None
    )
    extra["ctx"] = redact(ctx)
    # A traceback's last line quotes the exception, which may quote a URL with its password
    # (cv2, httpx): format it here, redacted, instead of letting each sink print it raw.
    exc = record["exception"]
    extra["exc"] = ""
    if exc is not None and exc.type is not None:
        text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
        extra["exc"] = "\n" + redact(text).rstrip("\n")
        record["exception"] = None


def _gzip_private(path: str) -> None:
    """loguru's compression step: the rotated file gzipped as 0600 (not by the umask)."""
    with open(path, "rb") as src, open(path + ".gz", "wb", opener=open_private) as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb") as dst:
            shutil.copyfileobj(src, dst)
    os.remove(path)


def configure_logging(settings: Settings) -> None:
    logger.remove()
    logger.configure(extra={"door": settings.door_name}, patcher=_with_context)
    logger.add(sys.stderr, level=settings.log_level, format=FORMAT, backtrace=False, diagnose=False)
    if settings.log_file:
        private_dir(settings.log_file.parent)
        logger.add(
            settings.log_file,
            level=settings.log_level,
            format=FORMAT,
            rotation=f"{settings.log_rotate_mb} MB",
            retention=settings.log_keep_files,
            compression=_gzip_private,
            enqueue=True,
            backtrace=False,
            diagnose=False,
            opener=open_private,  # owner-only, rotated files too
        )
