"""Logging set-up: loguru to stderr (and a rotated file when configured), with door context.

Production logging never writes a secret: passwords in URLs (a camera's ``rtsp://user:pass@``)
are masked in every message, ``diagnose`` is off (it would print the local variables of a
traceback, tokens and URLs included) and the log file is owner-only.
"""

from __future__ import annotations

import sys

from loguru import logger

from appliance.private import open_private, private_dir
from appliance.redact import redact
from appliance.settings import Settings

FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | "
    "{extra[door]} | <cyan>{name}</cyan> - <level>{message}</level>"
    " <dim>{extra[ctx]}</dim>"
)


def _with_context(record) -> None:
    extra = record["extra"]
    extra.setdefault("door", "-")
    record["message"] = redact(record["message"])
    ctx = " ".join(
        f"{k}={v}" for k, v in extra.items() if k not in ("door", "ctx") and v is not None
    )
    extra["ctx"] = redact(ctx)


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
            compression="gz",
            enqueue=True,
            backtrace=False,
            diagnose=False,
            opener=open_private,  # owner-only, rotated files too
        )
