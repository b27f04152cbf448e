"""The API and the appliance write one SQLite file at once: nobody sees "database is locked"."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from appliance import store
from appliance.faces import MODEL_NAME
from tests.api.conftest import Api


def test_api_writes_while_the_appliance_writes_events(api: Api) -> None:
    stop = threading.Event()
    appliance_errors: list[BaseException] = []
    written = [0]
    door = f"busy-door-{uuid.uuid4().hex[:6]}"

    def appliance() -> None:
        """Like the appliance's event writer and gallery poller, on its own connection."""
        db = store.open_db(api.settings.db_path, migrate_schema=False)
        try:
            while not stop.is_set():
                store.insert_events(db, [{"door": door, "kind": "access_denied"}] * 5)
                store.load_gallery_rows(db, MODEL_NAME)
                written[0] += 5
        except BaseException as exc:  # noqa: BLE001 - reported below
            appliance_errors.append(exc)
        finally:
            db.conn.close()

    def admin_work(i: int) -> list[int]:
        client = api.admin
        statuses = []
        resp = client.post("/people", json={"name": f"Concurrent {i}"})
        statuses.append(resp.status_code)
        pid = resp.json()["id"]
        for n in range(5):
            statuses.append(client.patch(f"/people/{pid}", json={"notes": f"edit {n}"}).status_code)
            statuses.append(client.get("/events", params={"door": door}).status_code)
        statuses.append(client.delete(f"/people/{pid}").status_code)
        return statuses

    writer = threading.Thread(target=appliance)
    writer.start()
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = [s for batch in pool.map(admin_work, range(12)) for s in batch]
    finally:
        stop.set()
        writer.join()
    assert appliance_errors == []
    assert set(results) <= {200, 201}, sorted(set(results))
    assert written[0] > 0
    assert (
        api.db.execute("SELECT count(*) FROM events WHERE door = ?", [door]).fetchone()[0]
        == written[0]
    )
