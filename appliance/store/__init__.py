"""The local store: one SQLite file (WAL) shared by the appliance, the admin API and sync.

Thin repository functions over sqlite-utils, one module per domain:

- :mod:`~appliance.store.db`: opening the file (pragmas, migrations), transactions, WAL
- :mod:`~appliance.store.people`, :mod:`~appliance.store.faces`: who may enter
- :mod:`~appliance.store.erasure`: what a deleted person leaves behind, removed
- :mod:`~appliance.store.gallery`: the door's one-read view of faces and rules
- :mod:`~appliance.store.schedules`, :mod:`~appliance.store.events`,
  :mod:`~appliance.store.commands`, :mod:`~appliance.store.status`,
  :mod:`~appliance.store.audit`, :mod:`~appliance.store.sync_state`

Every public name is re-exported here, so callers keep writing ``store.open_db(...)``.
"""

from appliance.match import GalleryRows
from appliance.store.audit import Audit, audit, list_audit
from appliance.store.commands import (
    claim_command,
    enqueue_command,
    expire_command,
    finish_command,
    get_command,
    pending_commands,
)
from appliance.store.db import (
    atomic,
    gallery_version,
    new_id,
    open_db,
    read_snapshot,
    truncate_wal,
)
from appliance.store.embeddings import EMBEDDING_DIM, blob_to_embedding, embedding_to_blob
from appliance.store.erasure import ERASED, PERSONAL_AUDIT_KEYS, erase_person_traces, remove_files
from appliance.store.errors import InUse, NotFound
from appliance.store.events import EVENT_COLUMNS, get_event, insert_events, list_events
from appliance.store.faces import add_face, delete_face, list_faces
from appliance.store.gallery import load_gallery_rows
from appliance.store.people import (
    PERSON_FIELDS,
    create_person,
    delete_person,
    find_person_by_external_id,
    get_person,
    list_persons,
    update_person,
)
from appliance.store.schedules import (
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    update_schedule,
)
from appliance.store.status import get_status, put_status
from appliance.store.sync_state import get_state, set_state

# the loop, sync and the API read the time helpers from the store
from appliance.timeutil import OutOfRange, parse_iso, to_iso, utc_now

__all__ = [
    "EMBEDDING_DIM",
    "ERASED",
    "EVENT_COLUMNS",
    "PERSONAL_AUDIT_KEYS",
    "PERSON_FIELDS",
    "Audit",
    "GalleryRows",
    "InUse",
    "NotFound",
    "OutOfRange",
    "add_face",
    "atomic",
    "audit",
    "blob_to_embedding",
    "claim_command",
    "create_person",
    "create_schedule",
    "delete_face",
    "delete_person",
    "delete_schedule",
    "embedding_to_blob",
    "enqueue_command",
    "erase_person_traces",
    "expire_command",
    "find_person_by_external_id",
    "finish_command",
    "gallery_version",
    "get_command",
    "get_event",
    "get_person",
    "get_schedule",
    "get_state",
    "get_status",
    "insert_events",
    "list_audit",
    "list_events",
    "list_faces",
    "list_persons",
    "list_schedules",
    "load_gallery_rows",
    "new_id",
    "open_db",
    "parse_iso",
    "pending_commands",
    "put_status",
    "read_snapshot",
    "remove_files",
    "set_state",
    "to_iso",
    "truncate_wal",
    "update_person",
    "update_schedule",
    "utc_now",
]
