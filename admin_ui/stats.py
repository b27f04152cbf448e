"""The entry log's figures for the charts: pure functions of the CSV export and the time zone."""

from __future__ import annotations

import io
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from admin_ui.client import DENIED, GRANTED

OUTCOMES = ("Granted", "Denied")


def events_frame(csv_bytes: bytes, tz: ZoneInfo) -> pd.DataFrame:
    """The CSV export as a frame with local time, day, hour and outcome columns."""
    columns = ["id", "ts", "door", "kind", "person_id", "person_name", "distance", "reason"]
    if not csv_bytes.strip():
        return pd.DataFrame(columns=[*columns, "local", "day", "hour", "outcome"])
    df = pd.read_csv(
        io.BytesIO(csv_bytes),
        dtype={
            "person_id": "string",
            "reason": "string",
            "person_name": "string",
            "door": "string",
        },
    )
    df["local"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601").dt.tz_convert(tz)
    df["day"] = df["local"].dt.date
    df["hour"] = df["local"].dt.hour
    df["outcome"] = df["kind"].map({GRANTED: "Granted", DENIED: "Denied"}).fillna("Door event")
    return df


def decisions(df: pd.DataFrame) -> pd.DataFrame:
    """Only the grants and denials (the door's own events are not entries)."""
    return df[df["outcome"].isin(OUTCOMES)]


def per_hour(df: pd.DataFrame) -> pd.DataFrame:
    """Entries per hour of day (0..23, every hour present) and outcome, long format."""
    d = decisions(df)
    grid = pd.MultiIndex.from_product([range(24), OUTCOMES], names=["hour", "outcome"])
    counts = d.groupby(["hour", "outcome"]).size().reindex(grid, fill_value=0)
    return counts.rename("entries").reset_index()


def per_day(df: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """Entries per day from ``first`` to ``last`` (every day present) and outcome, long format."""
    d = decisions(df)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    grid = pd.MultiIndex.from_product([days, OUTCOMES], names=["day", "outcome"])
    counts = d.groupby(["day", "outcome"]).size().reindex(grid, fill_value=0)
    out = counts.rename("entries").reset_index()
    out["day"] = pd.to_datetime(out["day"])
    return out


def outcome_totals(df: pd.DataFrame) -> dict[str, int]:
    d = decisions(df)
    counts = d["outcome"].value_counts()
    return {o: int(counts.get(o, 0)) for o in OUTCOMES}


def denial_reasons(df: pd.DataFrame) -> pd.DataFrame:
    """Denials by reason, most frequent first."""
    d = df[df["kind"] == DENIED]
    reasons = d["reason"].fillna("unknown").value_counts()
    return reasons.rename_axis("reason").rename("denials").reset_index()
