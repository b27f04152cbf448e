"""Facegate's door kiosk."""

import os

# FFmpeg's own messages ("moov atom not found", codec chatter) would reach the terminal beside
# ours; every failure they describe is also reported by us, in words. Set either variable to
# see them again while debugging a camera.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
