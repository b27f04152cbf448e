"""Kept for one release: the kiosk moved to :mod:`appliance.kiosk` (and its parts to
``commands``, ``gallery_feed``, ``live_view``, ``kiosk_status``), the engine factory to
:mod:`appliance.startup`. Import from there.
"""

from appliance.kiosk import Kiosk
from appliance.startup import check_source, make_engine, make_liveness_check

__all__ = ["Kiosk", "check_source", "make_engine", "make_liveness_check"]
