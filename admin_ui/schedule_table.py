"""Weekly windows <-> the rows of the editable table on the Schedules page (pure)."""

from __future__ import annotations

import re
from typing import Any

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # 0 = Monday, as the API counts
_HHMM = re.compile(r"^\s*(\d{1,2})[:.h]?(\d{2})\s*$")


def windows_to_rows(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per window: a tick per day, then start and end."""
    rows = []
    for w in windows:
        days = set(w.get("days") or [])
        rows.append(
            {
                **{d: i in days for i, d in enumerate(DAYS)},
                "Start": w.get("start", ""),
                "End": w.get("end", ""),
            }
        )
    return rows


def _hhmm(text: Any, what: str, row: int) -> str:
    m = _HHMM.match(str(text or ""))
    if not m:
        raise ValueError(f"row {row}: {what} must be a time like 07:30 (got {text!r})")
    h, mm = int(m.group(1)), int(m.group(2))
    if not (0 <= h <= 24 and 0 <= mm < 60) or (h == 24 and mm):
        raise ValueError(f"row {row}: {what} {text!r} is not a time of day")
    return f"{h:02d}:{mm:02d}"


def rows_to_windows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table back to API windows; blank rows are dropped, a bad row raises ValueError."""
    windows = []
    for n, row in enumerate(rows, start=1):
        days = [i for i, d in enumerate(DAYS) if bool(row.get(d))]
        start, end = row.get("Start"), row.get("End")
        if not days and not str(start or "").strip() and not str(end or "").strip():
            continue
        if not days:
            raise ValueError(f"row {n}: tick at least one day")
        windows.append(
            {"days": days, "start": _hhmm(start, "start", n), "end": _hhmm(end, "end", n)}
        )
    return windows


def _day_span(days: list[int]) -> str:
    """[0,1,2,3,4] -> 'Mon–Fri'; [0,2] -> 'Mon, Wed'."""
    days = sorted(set(days))
    groups: list[list[int]] = []
    for d in days:
        if groups and d == groups[-1][-1] + 1:
            groups[-1].append(d)
        else:
            groups.append([d])
    parts = [
        DAYS[g[0]]
        if len(g) == 1
        else f"{DAYS[g[0]]}, {DAYS[g[1]]}"
        if len(g) == 2
        else f"{DAYS[g[0]]}–{DAYS[g[-1]]}"
        for g in groups
    ]
    return ", ".join(parts)


def describe(windows: list[dict[str, Any]]) -> str:
    """A schedule in one line: 'Mon–Fri 07:00–19:00; Sat 09:00–13:00'."""
    if not windows:
        return "no windows (never allowed)"
    return "; ".join(f"{_day_span(w['days'])} {w['start']}–{w['end']}" for w in windows)
