"""``python -m appliance``: enrol people, identify a photo, run the door, read the entry log."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from appliance.image_files import is_image_file
from appliance.settings import SettingsError, load_settings

#: 3: enrolment accepted some photos and refused others (see appliance.enroll.EXIT_CODES)
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_SOME_REFUSED = 0, 1, 2, 3


def _photos(paths: list[str]) -> list[Path]:
    """Files as given; folders expand to the image files directly inside them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and is_image_file(f))
        else:
            out.append(p)
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # refused below as not an image, with the file named


def _print_table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))


# --- commands --------------------------------------------------------------------------------


def _print_results(results) -> None:
    for r in results:
        if r.accepted:
            print(f"accepted  {r.source}")
        elif r.code == "duplicate":
            print(f"skipped   {r.source}: {r.message}", file=sys.stderr)
        else:
            print(f"refused   {r.source}: {r.message}", file=sys.stderr)


def cmd_enrol(args, settings) -> int:
    """Exit 0: every photo accepted (or already enrolled); 1: none accepted; 3: some refused."""
    from appliance import store
    from appliance.enroll import EXIT_CODES, NONE_ACCEPTED, enrol
    from appliance.startup import make_engine

    files = _photos(args.photos)
    missing = [f for f in files if not f.is_file()]
    for f in missing:
        print(f"refused   {f}: file not found", file=sys.stderr)
    files = [f for f in files if f.is_file()]
    if not files:
        print("nothing enrolled: no photo to read", file=sys.stderr)
        return EXIT_FAIL if missing else EXIT_USAGE
    db = store.open_db(settings.db_path)
    known = store.find_person_by_external_id(db, args.external_id) if args.external_id else None
    if known and args.name and args.name != known["name"] and not args.rename:
        print(
            f"note: {args.external_id} is {known['name']}: the existing name is kept "
            f"(--rename to change it to {args.name!r})",
            file=sys.stderr,
        )
    try:
        result = enrol(
            db,
            make_engine(settings),
            settings,
            [(str(f), _read(f)) for f in files],
            name=args.name,
            external_id=args.external_id,
            actor="cli",
        )
    except (ValueError, store.NotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    _print_results(result.results)
    if result.enrolled == 0 and result.verdict == NONE_ACCEPTED:
        print("nothing enrolled", file=sys.stderr)
        return EXIT_FAIL
    if known and args.rename and args.name and args.name != known["name"]:
        store.update_person(db, known["id"], name=args.name, audit_entry=("cli", "rename", None))
        print(f"renamed {known['name']!r} to {args.name!r}", file=sys.stderr)
    print(result.person_id)
    return EXIT_SOME_REFUSED if missing else EXIT_CODES[result.verdict]


def cmd_enrol_folder(args, settings) -> int:
    """One sub-folder per person; running it again on the same folder changes nothing.

    Exit 0: every photo accepted (or already enrolled); 1: nobody got a face; 3: some photos
    refused or some person got no face.
    """
    from tqdm import tqdm

    from appliance import store
    from appliance.enroll import NONE_ACCEPTED
    from appliance.startup import make_engine

    root = Path(args.folder)
    if not root.is_dir():
        print(f"error: {root} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    people = sorted(p for p in root.iterdir() if p.is_dir())
    loose = sorted(p.name for p in root.iterdir() if p.is_file())
    if loose:
        print(
            f"skipped {len(loose)} loose file(s) in {root} (photos go in one sub-folder per "
            f"person): {', '.join(loose)}",
            file=sys.stderr,
        )
    if not people:
        print(f"error: {root} has no sub-folders (one per person)", file=sys.stderr)
        return EXIT_USAGE
    db = store.open_db(settings.db_path)
    engine = make_engine(settings)
    rows: list[list[str]] = []
    total = 0
    verdicts: list[str] = []
    empty: list[str] = []
    for folder in tqdm(people, desc="enrolling", unit="person"):
        files = _photos([str(folder)])
        if not files:
            empty.append(folder.name)
            rows.append([folder.name, "0", "0", "0", "no photos in this folder"])
            verdicts.append(NONE_ACCEPTED)
            continue
        row, verdict, enrolled = _enrol_person_folder(db, engine, settings, folder.name, files)
        rows.append(row)
        verdicts.append(verdict)
        total += enrolled
    return _enrol_folder_summary(rows, verdicts, empty, total)


def _enrol_person_folder(
    db, engine, settings, name: str, files: list[Path]
) -> tuple[list[str], str, int]:
    """Enrol one person's sub-folder: their table row, their verdict, the faces enrolled."""
    from appliance.enroll import DUPLICATE, enrol

    res = enrol(
        db,
        engine,
        settings,
        [(str(f), _read(f)) for f in files],
        name=name,
        external_id=name,
        actor="cli",
    )
    refused = [
        f"{Path(r.source).name}: {r.message}"
        for r in res.results
        if not r.accepted and r.code != DUPLICATE
    ]
    skipped = sum(r.code == DUPLICATE for r in res.results)
    row = [name, str(res.enrolled), str(skipped), str(len(refused)), "; ".join(refused)]
    return row, res.verdict, res.enrolled


def _enrol_folder_summary(
    rows: list[list[str]], verdicts: list[str], empty: list[str], total: int
) -> int:
    """Print enroll-folder's table and notes; its exit code."""
    from appliance.enroll import ALL_ACCEPTED, NONE_ACCEPTED

    _print_table(rows, ["person", "enrolled", "already had", "refused", "why"])
    if empty:
        print(f"empty sub-folder(s), nobody enrolled: {', '.join(empty)}", file=sys.stderr)
    faceless = [row[0] for row, v in zip(rows, verdicts, strict=True) if v == NONE_ACCEPTED]
    refused_all = [f for f in faceless if f not in empty]
    if refused_all:
        print(f"no face enrolled for: {', '.join(refused_all)}", file=sys.stderr)
    print(f"{total} face(s) enrolled for {sum(r[1] != '0' for r in rows)} person(s)")
    if all(v == NONE_ACCEPTED for v in verdicts):
        return EXIT_FAIL
    if any(v != ALL_ACCEPTED for v in verdicts):  # a refusal, or someone got no face
        return EXIT_SOME_REFUSED
    return EXIT_OK


def cmd_persons(args, settings) -> int:
    from appliance import store

    db = store.open_db(settings.db_path)
    action = args.action
    if action in ("show", "disable", "enable", "remove") and not args.id:
        print(f"error: persons {action} needs a person id or external id", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.id:
            args.id = _resolve_person(store, db, args.id)
        if action == "list":
            return _persons_list(store, db, args)
        if action == "show":
            return _persons_show(store, db, args)
        if action in ("disable", "enable"):
            person = store.update_person(
                db, args.id, active=action == "enable", audit_entry=("cli", action, None)
            )
            print(json.dumps(_public(person)) if args.json else f"{person['name']}: {action}d")
            return EXIT_OK
        if action == "remove":
            return _persons_remove(store, db, args)
    except store.NotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_USAGE


def _persons_list(store, db, args) -> int:
    persons, _ = store.list_persons(db, limit=1_000_000)
    persons = [_public(p) for p in persons]
    if args.json:
        print(json.dumps(persons, indent=2))
        return EXIT_OK
    _print_table(
        [
            [
                p["id"],
                p["name"],
                p["external_id"] or "",
                "yes" if p["active"] else "no",
                str(p["face_count"]),
            ]
            for p in persons
        ],
        ["id", "name", "external id", "active", "faces"],
    )
    return EXIT_OK


def _persons_show(store, db, args) -> int:
    person = _public(store.get_person(db, args.id))
    person["faces"] = [
        {**f, "has_photo": bool(f["has_photo"])} for f in store.list_faces(db, args.id)
    ]
    if person["schedule_id"]:
        names = {x["id"]: x["name"] for x in store.list_schedules(db)}
        person["schedule"] = names.get(person["schedule_id"])
    print(json.dumps(person, indent=2) if args.json else _fmt_person(person))
    return EXIT_OK


def _persons_remove(store, db, args) -> int:
    if not args.yes and sys.stdin.isatty():
        person = store.get_person(db, args.id)
        answer = input(
            f"Remove {person['name']} ({args.id}) and their {person['face_count']} "
            "face(s)? This cannot be undone. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed", file=sys.stderr)
            return EXIT_FAIL
    n = store.delete_person(db, args.id, audit_entry=("cli", "remove", None))
    print(
        json.dumps({"id": args.id, "faces_deleted": n})
        if args.json
        else f"removed {args.id} and {n} face(s)"
    )
    return EXIT_OK


def _resolve_person(store, db, key: str) -> str:
    """A person's uuid from their uuid or their external id (employee or badge number)."""
    try:
        return store.get_person(db, key)["id"]
    except store.NotFound:
        person = store.find_person_by_external_id(db, key)
        if person is None:
            raise store.NotFound(f"no person with id or external id {key}") from None
        return person["id"]


#: Columns that are the store's and sync's business, not a person's.
_INTERNAL = ("deleted", "dirty", "central_version", "sync_refused_at")


def _public(person: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in person.items() if k not in _INTERNAL}


def _fmt_person(p: dict[str, Any]) -> str:
    rows = [
        ("id", p["id"]),
        ("name", p["name"]),
        ("external id", p["external_id"] or "-"),
        ("active", "yes" if p["active"] else "no (disabled)"),
        ("valid from", p["valid_from"] or "always"),
        ("valid until", p["valid_until"] or "no end"),
        ("schedule", p.get("schedule") or p["schedule_id"] or "-"),
        ("notes", p["notes"] or "-"),
        ("created", p["created_at"]),
        ("updated", p["updated_at"]),
        ("faces", str(len(p["faces"]))),
    ]
    return "\n".join(f"{k:12} {v}" for k, v in rows)


def cmd_identify(args, settings) -> int:
    from appliance import store
    from appliance.enroll import PhotoRefused, load_photo
    from appliance.faces import MODEL_NAME
    from appliance.match import Gallery, background_cohort
    from appliance.startup import make_engine

    path = Path(args.photo)
    if not path.is_file():
        print(f"error: {path}: file not found", file=sys.stderr)
        return EXIT_FAIL
    try:
        rgb = load_photo(_read(path), str(path))
    except PhotoRefused as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    db = store.open_db(settings.db_path)
    gallery = Gallery(
        store.load_gallery_rows(db, MODEL_NAME),
        background_cohort(settings.match_background_cohort),
    )
    faces = _identify_faces(settings, make_engine(settings), gallery, rgb)
    # a still cannot show a live person: the door's liveness check may refuse what this grants
    liveness_note = "liveness is not judged from one photo: at the door " + (
        f"the liveness check ({settings.liveness}) may still refuse this face"
        if settings.liveness != "off"
        else "liveness is off (FACEGATE_LIVENESS=off)"
    )
    if args.json:
        print(json.dumps({"faces": faces, "liveness_judged": False, "note": liveness_note}))
    elif not faces:
        print("no face found")
    else:
        _print_table(
            [
                [
                    str(f["box"]),
                    f["person_name"] or "unknown",
                    _num(f["distance"]),
                    _num(f["margin"]),
                    f["decision"],
                    f["reason"] or "",
                ]
                for f in faces
            ],
            ["box", "person", "distance", "margin", "decision", "reason"],
        )
        print(f"note: {liveness_note}")
    return EXIT_OK


def _identify_faces(settings, engine, gallery, rgb) -> list[dict[str, Any]]:
    """Every face in the photo with the door's own decision for it (as if still and live)."""
    from appliance import store, track_decision
    from appliance.liveness import UNSURE_TIMEOUT_S

    boxes = engine.detect(rgb, upsample=1, max_side=1024)
    faces = []
    # the door's own decision, for a face that stood still in front of it and passed liveness
    rules = track_decision.Rules.from_settings(settings, liveness_timeout_s=UNSURE_TIMEOUT_S)
    ctx = track_decision.Context(0.0, store.utc_now(), gallery.persons, {})
    for box, emb in zip(boxes, engine.encode(rgb, boxes), strict=True):
        m = gallery.match(emb, settings.match_threshold, settings.match_cohort_ratio)
        d = track_decision.judge_still(m, ctx, rules)
        person = d.person
        faces.append(
            {
                "box": list(box),
                "person_id": person["id"] if person else None,
                "person_name": person["name"] if person else None,
                "distance": None if m.distance == float("inf") else round(m.distance, 4),
                "margin": None if m.margin == float("inf") else round(m.margin, 4),
                "decision": d.kind,
                "reason": d.reason,
            }
        )
    return faces


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def cmd_calibrate(args, settings) -> int:
    from appliance import calibrate, store
    from appliance.faces import MODEL_NAME
    from appliance.match import background_cohort

    for opt, folder in (("--probes", args.probes), ("--strangers", args.strangers)):
        if folder is not None and not Path(folder).is_dir():
            print(f"error: {opt} {folder} is not a folder", file=sys.stderr)
            return EXIT_USAGE
    db = store.open_db(settings.db_path)
    try:
        rows = store.load_gallery_rows(db, MODEL_NAME)
    finally:
        db.conn.close()
    if not rows.person_ids:
        print("error: nobody is enrolled; enrol people first", file=sys.stderr)
        return EXIT_FAIL
    probes = strangers = None
    unmatched: list[str] = []
    if args.probes or args.strangers:
        from appliance.startup import make_engine

        engine = make_engine(settings)
        if args.probes:
            folders, unmatched = calibrate.probe_folders(rows, Path(args.probes))
            probes = {pid: calibrate.embed_folder(engine, d) for pid, d in folders.items()}
        if args.strangers:
            strangers = calibrate.embed_folder(engine, Path(args.strangers))
    rep = calibrate.report(
        rows,
        threshold=settings.match_threshold,
        margin=settings.match_margin,
        max_ratio=settings.match_cohort_ratio,
        background=background_cohort(settings.match_background_cohort),
        probes=probes,
        strangers=strangers,
    )
    rep.unmatched_probe_folders = unmatched
    if args.json:
        print(json.dumps(rep.as_dict(), indent=2))
    else:
        _print_calibration(rep, settings.match_cohort_ratio)
    return EXIT_OK


def _print_calibration(rep, cohort_ratio: float) -> None:
    """calibrate's report as tables, warnings and the recommendation."""
    print(
        f"threshold {rep.threshold}, margin {rep.margin}, cohort ratio "
        f"{cohort_ratio} (FACEGATE_MATCH_THRESHOLD, _MARGIN, _COHORT_RATIO)"
    )
    _print_table(
        [
            [
                p["name"],
                str(p["faces"]),
                f"{p['spread']:.3f}",
                p["nearest_person"] or "-",
                _num(p["nearest_distance"]),
                p["advice"],
            ]
            for p in rep.persons
        ],
        ["person", "faces", "spread", "nearest other person", "distance", "advice"],
    )
    if rep.lookalikes:
        print(f"look-alike pairs under threshold + margin ({rep.threshold + rep.margin:.2f}):")
        for pair in rep.lookalikes:
            print(f"  {pair['a']} / {pair['b']}: {pair['distance']:.3f}")
    for name in rep.unmatched_probe_folders:
        print(f"warning: probe folder {name!r} matches no enrolled person", file=sys.stderr)
    if rep.sweep:
        _print_table(
            [
                [
                    f"{r['threshold']:.2f}",
                    f"{r['genuine_accepted']}/{r['genuine']}",
                    str(r["wrong_person"]),
                    f"{r['stranger_accepts']}/{r['strangers']}",
                ]
                for r in rep.sweep
            ],
            ["threshold", "genuine accepted", "wrong person", "strangers accepted"],
        )
    print("recommendation: " + rep.recommendation)
    print("(nothing was changed; set FACEGATE_MATCH_THRESHOLD yourself)")


def cmd_run(args, settings) -> int:
    # sqlite_utils imports pandas whenever it can, for DataFrame column types; the kiosk stores
    # none, and pandas would be a fifth of the start-up a watchdog restart costs at the door
    blocked = "pandas" not in sys.modules
    if blocked:
        sys.modules["pandas"] = None  # type: ignore[assignment]  # import pandas -> ImportError
    try:
        from appliance import instance_lock
        from appliance.camera import SourceError
        from appliance.kiosk import Kiosk
        from hardware.door import DoorControllerError
        from hardware.pins import PinFactoryError
    finally:
        if blocked and sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]  # anything later in this process may import it

    # systemd may stop us while the models load: end start-up cleanly (door closed, relay safe,
    # lock released) instead of dying in the middle of it
    signal.signal(signal.SIGTERM, _stop_during_start_up)
    try:  # the kiosk takes the data folder's lock first of all, before the door and models
        kiosk = Kiosk(settings, source=args.source, fast=args.fast, once=args.once)
        kiosk.install_signal_handlers()
    except StoppedDuringStartUp:
        print("stopped during start-up (SIGTERM): the door never decided", file=sys.stderr)
        return EXIT_OK
    except instance_lock.DataFolderBusy as exc:  # one kiosk per data folder
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (PinFactoryError, DoorControllerError) as exc:
        # the door hardware cannot start: say which setting, never simulate instead
        print(f"error: door hardware cannot start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return kiosk.run()


class StoppedDuringStartUp(Exception):
    """SIGTERM arrived before the kiosk had installed its own handlers."""


def _stop_during_start_up(_signum, _frame) -> None:
    raise StoppedDuringStartUp()


def cmd_events(args, settings) -> int:
    from appliance import store

    if args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    db = store.open_db(settings.db_path)
    try:
        rows = store.list_events(db, since=args.since, limit=args.limit)
    except store.OutOfRange as exc:
        print(f"error: --since {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError:
        print(
            f"error: --since {args.since!r} is not an ISO-8601 time "
            "(for example 2026-11-25T08:00 or 2026-11-25T08:00+01:00)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no events" + (f" since {args.since}" if args.since else ""))
    else:
        if len(rows) == args.limit:
            print(f"(the newest {args.limit}; --limit N shows more)", file=sys.stderr)
        _print_table(
            [
                [
                    r["ts"],
                    r["door"],
                    r["kind"],
                    r["person_name"] or "",
                    _num(r["distance"]),
                    r["reason"] or "",
                ]
                for r in rows
            ],
            ["time (UTC)", "door", "kind", "person", "distance", "reason"],
        )
    return EXIT_OK


def cmd_notify_test(args, settings) -> int:
    """Send a test notification to every configured URL and print what each answered."""
    from notify.admin import print_test

    return print_test(settings)


def cmd_backup(args, settings) -> int:
    from appliance.backup import BackupError, backup

    try:
        info = backup(settings.db_path, Path(args.path))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(
        f"backed up to {info.path} ({info.bytes} bytes, schema {info.schema_version}, "
        f"{info.persons} person(s), {info.events} event(s))"
    )
    return EXIT_OK


def cmd_restore(args, settings) -> int:
    from appliance.backup import BackupError, restore

    try:
        info = restore(Path(args.path), settings.db_path)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(
        f"restored {args.path} to {info.path} (schema {info.schema_version}, "
        f"{info.persons} person(s), {info.events} event(s)); the previous store is kept as "
        f"{info.path.name}.before-restore"
    )
    return EXIT_OK


def cmd_prune(args, settings) -> int:
    from appliance import retention, store

    db = store.open_db(settings.db_path)
    try:
        report = retention.run_retention(db, settings, store.utc_now())
    finally:
        db.conn.close()
    print(json.dumps(report.as_dict()) if args.json else _fmt_retention(report.as_dict()))
    return EXIT_OK


def _fmt_retention(r: dict[str, Any]) -> str:
    lines = [f"{k.replace('_', ' '):22} {v}" for k, v in r.items()]
    return "\n".join(lines)


def cmd_doctor(args, settings) -> int:
    from appliance.doctor import main as doctor

    return doctor(settings, json_out=args.json, camera_seconds=args.camera_seconds)


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m appliance",
        description="Facegate door kiosk: enrol people, identify a photo, run the door, "
        "read the entry log.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    _add_people_commands(sub)
    _add_door_commands(sub)
    return p


def _add_people_commands(sub) -> None:
    """enroll, enroll-folder, persons, identify, calibrate."""
    e = sub.add_parser(
        "enroll",
        help="add a person (or faces to a person) from photos",
        description="Exit status: 0 every photo accepted (or already enrolled), 1 none "
        "accepted, 3 some refused.",
    )
    e.add_argument("--name", help="the person's name (needed for a new person)")
    e.add_argument("--external-id", help="employee or badge number; adds to that person if known")
    e.add_argument(
        "--rename", action="store_true", help="with --external-id: give that person --name"
    )
    e.add_argument("photos", nargs="+", metavar="PHOTO_OR_FOLDER")
    e.set_defaults(func=cmd_enrol)

    ef = sub.add_parser(
        "enroll-folder",
        help="one sub-folder per person (name = folder name)",
        description="Idempotent: photos a person already has are skipped. Exit status: 0 every "
        "photo accepted (or already enrolled), 1 nobody got a face, 3 some photos refused or "
        "some person got no face.",
    )
    ef.add_argument("folder")
    ef.set_defaults(func=cmd_enrol_folder)

    pe = sub.add_parser("persons", help="list, show, disable, enable or remove persons")
    pe.add_argument(
        "action", nargs="?", default="list", choices=["list", "show", "disable", "enable", "remove"]
    )
    pe.add_argument("id", nargs="?", help="the person's id or external id")
    pe.add_argument("--json", action="store_true")
    pe.add_argument("--yes", action="store_true", help="remove without asking")
    pe.set_defaults(func=cmd_persons)

    i = sub.add_parser("identify", help="who is in this photo, and would the door open?")
    i.add_argument("photo")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_identify)

    c = sub.add_parser(
        "calibrate", help="how safe is the match threshold for the enrolled people? (read-only)"
    )
    c.add_argument("--probes", metavar="DIR", help="photos of enrolled people, a folder each")
    c.add_argument("--strangers", metavar="DIR", help="photos of people who are not enrolled")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_calibrate)


def _add_door_commands(sub) -> None:
    """run, events, notify-test, backup, restore, prune, doctor."""
    r = sub.add_parser("run", help="run the door")
    r.add_argument("--source", help="camera index, /dev/videoN, URL, video file or image folder")
    r.add_argument("--once", action="store_true", help="stop at the end of a file or folder")
    r.add_argument(
        "--fast",
        action="store_true",
        help="feed every frame as fast as the pipeline takes it (tests, benchmarks)",
    )
    r.set_defaults(func=cmd_run)

    ev = sub.add_parser("events", help="the entry log, newest first")
    ev.add_argument("--since", help="ISO-8601 time (UTC if no zone given)")
    ev.add_argument("--limit", type=int, default=50, help="at most this many rows (50)")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_events)

    nt = sub.add_parser("notify-test", help="send a test message to every FACEGATE_NOTIFY_URLS")
    nt.set_defaults(func=cmd_notify_test)

    b = sub.add_parser("backup", help="consistent copy of the store (safe while the door runs)")
    b.add_argument("path", help="backup file (or folder) to write")
    b.set_defaults(func=cmd_backup)

    rs = sub.add_parser("restore", help="put a backup back (the services must be stopped)")
    rs.add_argument("path", help="backup file made by `backup`")
    rs.set_defaults(func=cmd_restore)

    pr = sub.add_parser("prune", help="apply the retention settings now (the door does it daily)")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_prune)

    d = sub.add_parser("doctor", help="self-check: camera, pins, store, clock, API, sync, units")
    d.add_argument("--json", action="store_true")
    d.add_argument(
        "--camera-seconds", type=float, default=2.0, help="measure the camera's fps this long"
    )
    d.set_defaults(func=cmd_doctor)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from appliance.logs import configure_logging

    # the door logs what it does; the one-shot commands print their results and only warn
    quiet = args.command != "run" and settings.log_level in ("INFO", "SUCCESS")
    configure_logging(settings.model_copy(update={"log_level": "WARNING"}) if quiet else settings)
    try:
        return args.func(args, settings)
    except KeyboardInterrupt:  # Ctrl-C before the door's own handlers are installed
        print("interrupted", file=sys.stderr)
        return 130
