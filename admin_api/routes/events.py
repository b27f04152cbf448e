"""The entry log: filtered, paged listing, CSV export, and the stored snapshot of an event."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, send_file, stream_with_context

from admin_api.auth import viewer_allowed
from admin_api.errors import bad_request, not_found
from admin_api.models import CSV, JPEG, Event, EventFilters, EventPage, EventsQuery, dump
from admin_api.openapi import doc
from admin_api.state import db, state
from admin_api.validation import parse_query
from appliance import store

bp = Blueprint("events", __name__)

CSV_FIELDS = (
    "id",
    "ts",
    "door",
    "kind",
    "person_id",
    "person_name",
    "distance",
    "reason",
    "synced",
)
CSV_PAGE = 1000


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    return dump(Event, {**row, "has_snapshot": bool(row.get("snapshot_path"))})


def _csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ would be run as a formula."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(filters: dict[str, Any]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    conn = db()
    before = None
    while True:  # keyset pages: each costs the same however deep the export is
        page = store.list_events(conn, limit=CSV_PAGE, before=before, **filters)
        for row in page:
            writer.writerow([_csv_cell(row.get(k)) for k in CSV_FIELDS])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if len(page) < CSV_PAGE:
            return
        before = page[-1]["id"]


def _csv_response(filters: dict[str, Any]) -> Response:
    # the export reads keyset pages (a before= cursor) newest first, so new events cannot shift
    # them; the until bound makes it a snapshot of the log as it was when the export was asked for
    filters = {**filters, "until": filters["until"] or store.to_iso(store.utc_now())}
    return Response(
        stream_with_context(_csv_rows(filters)),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="events.csv"'},
    )


@bp.get("/events")
@viewer_allowed
@doc(
    "The entry log, newest first (format=csv: the CSV export)",
    "events",
    {"application/json": EventPage, **CSV},
    query=EventsQuery,
)
def list_events() -> Response:
    q = parse_query(EventsQuery)
    filters = q.store_filters()
    if q.format == "csv":
        return _csv_response(filters)
    limit, offset, before = q.limit, q.offset, q.before
    if before and offset:
        raise bad_request("use either before (a cursor) or offset, not both")
    # one extra row says whether there is a next page, without counting 100k rows
    try:
        rows = store.list_events(db(), limit=limit + 1, offset=offset, before=before, **filters)
    except store.NotFound:
        raise bad_request(f"before: no event with id {before}") from None
    more = len(rows) > limit
    page = rows[:limit]
    return jsonify(
        {
            "items": [event_json(r) for r in page],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if more and not before else None,
            # the cursor for the next page: pass it as ?before=
            "next_before": page[-1]["id"] if more else None,
        }
    )


@bp.get("/events.csv")
@viewer_allowed
@doc("CSV export of the entry log (all matching events)", "events", CSV, query=EventFilters)
def export_events_csv() -> Response:
    return _csv_response(parse_query(EventFilters).store_filters())


@bp.get("/events/<event_id>")
@viewer_allowed
@doc("Read an event", "events", Event, errors=(404,))
def get_event(event_id: str) -> Response:
    return jsonify(event_json(store.get_event(db(), event_id)))


@bp.get("/events/<event_id>/snapshot")
@viewer_allowed
@doc("The face snapshot stored with an event", "events", JPEG, errors=(404,))
def get_event_snapshot(event_id: str) -> Response:
    row = store.get_event(db(), event_id)
    if not row.get("snapshot_path"):
        raise not_found(f"event {event_id} has no snapshot")
    root = state().settings.snapshot_dir.resolve()
    path = Path(row["snapshot_path"])
    path = (path if path.is_absolute() else root / path).resolve()
    # only files under the snapshot folder are ever served, whatever the row says
    if not path.is_relative_to(root) or not path.is_file():
        raise not_found(f"the snapshot of event {event_id} is no longer stored")
    return send_file(path, mimetype="image/jpeg", max_age=0)
