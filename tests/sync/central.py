"""Admin-side operations on a central store, for tests: the local gateway or a real project.

Both backends provision doors with the product's own ``provision_door`` and change central data
as an admin would (service role). ``GatewayCentral`` uses SQL on the test database (and can do
what only a test may: inspect rows as another role); ``SupabaseCentral`` uses supabase-py's
table API against a real Supabase project.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np
import psycopg
from psycopg.rows import dict_row
from supabase import ClientOptions, create_client

from sync.provision import provision_door


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Central:
    url: str
    anon_key: str
    service_key: str
    name: str

    def provision(self, site: str, door: str) -> dict[str, str]:
        return provision_door(self.url, self.anon_key, self.service_key, site, door)

    # implemented by the backends
    def site_id(self, site: str) -> str: ...
    def device_id(self, email: str) -> str: ...
    def add_person(
        self, site: str, name: str, embeddings: list[np.ndarray], model: str, **fields: Any
    ) -> str: ...
    def update_person(self, person_id: str, **fields: Any) -> None: ...
    def delete_person(self, person_id: str) -> None: ...
    def add_raw_face(self, person_id: str, embedding: list[Any], model: str) -> str: ...
    def person(self, person_id: str) -> dict[str, Any] | None: ...
    def faces(self, person_id: str) -> list[dict[str, Any]]: ...
    def event_ids(self, device_id: str) -> list[str]: ...
    def close(self) -> None: ...


class GatewayCentral(Central):
    name = "gateway"

    def __init__(self, gateway: Any, dsn: str) -> None:
        self.gateway = gateway
        self.dsn = dsn
        self.url = gateway.url
        self.anon_key = gateway.anon_key
        self.service_key = gateway.service_role_key

    def sql(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        with psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def site_id(self, site: str) -> str:
        return str(self.sql("select id from sites where name = %s", [site])[0]["id"])

    def device_id(self, email: str) -> str:
        return str(
            self.sql(
                "select d.id from devices d join auth.users u on u.id = "
                "d.auth_user_id where u.email = %s",
                [email],
            )[0]["id"]
        )

    def add_person(
        self, site: str, name: str, embeddings: list[np.ndarray], model: str, **fields: Any
    ) -> str:
        pid = str(uuid.uuid4())
        cols = ["id", "name", *fields]
        with psycopg.connect(self.dsn) as conn:  # one transaction, as an admin tool would
            conn.execute(
                f"insert into persons ({', '.join(cols)}) values ({', '.join(['%s'] * len(cols))})",
                [pid, name, *fields.values()],
            )
            for emb in embeddings:
                conn.execute(
                    "insert into faces (person_id, embedding, model) values (%s, %s, %s)",
                    [pid, [float(v) for v in emb], model],
                )
            conn.execute(
                "insert into person_sites (person_id, site_id) "
                "select %s, id from sites where name = %s",
                [pid, site],
            )
        return pid

    def update_person(self, person_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = %s" for k in fields)
        self.sql(f"update persons set {sets} where id = %s", [*fields.values(), person_id])

    def delete_person(self, person_id: str) -> None:
        self.sql("delete from persons where id = %s", [person_id])

    def revoke_access(self, person_id: str, site: str) -> None:
        self.sql(
            "delete from person_sites where person_id = %s and site_id = "
            "(select id from sites where name = %s)",
            [person_id, site],
        )

    def add_raw_face(self, person_id: str, embedding: list[Any], model: str) -> str:
        return str(
            self.sql(
                "insert into faces (person_id, embedding, model) values "
                "(%s, %s::real[], %s) returning id",
                [person_id, embedding, model],
            )[0]["id"]
        )

    def person(self, person_id: str) -> dict[str, Any] | None:
        rows = self.sql("select * from persons where id = %s", [person_id])
        return rows[0] if rows else None

    def faces(self, person_id: str) -> list[dict[str, Any]]:
        return self.sql("select * from faces where person_id = %s order by created_at", [person_id])

    def event_ids(self, device_id: str) -> list[str]:
        return [
            str(r["id"])
            for r in self.sql("select id from access_events where device_id = %s", [device_id])
        ]

    def close(self) -> None:
        pass


class SupabaseCentral(Central):
    """A real Supabase project (FACEGATE_TEST_SUPABASE_URL and keys) with the migrations applied."""

    name = "supabase"

    def __init__(self, url: str, anon_key: str, service_key: str) -> None:
        self.url, self.anon_key, self.service_key = url, anon_key, service_key
        self._http = httpx.Client(timeout=30)
        self.sb = create_client(
            url,
            service_key,
            ClientOptions(httpx_client=self._http, auto_refresh_token=False, persist_session=False),
        )

    def site_id(self, site: str) -> str:
        return self.sb.table("sites").select("id").eq("name", site).execute().data[0]["id"]

    def device_id(self, email: str) -> str:
        users = self.sb.auth.admin.list_users(per_page=1000)
        uid = next(u.id for u in users if u.email == email)
        rows = self.sb.table("devices").select("id").eq("auth_user_id", uid).execute().data
        return rows[0]["id"]

    def add_person(
        self, site: str, name: str, embeddings: list[np.ndarray], model: str, **fields: Any
    ) -> str:
        pid = str(uuid.uuid4())
        self.sb.table("persons").insert({"id": pid, "name": name, **fields}).execute()
        for emb in embeddings:
            self.sb.table("faces").insert(
                {"person_id": pid, "model": model, "embedding": [float(v) for v in emb]}
            ).execute()
        self.sb.table("person_sites").insert(
            {"person_id": pid, "site_id": self.site_id(site)}
        ).execute()
        return pid

    def update_person(self, person_id: str, **fields: Any) -> None:
        self.sb.table("persons").update(fields).eq("id", person_id).execute()

    def delete_person(self, person_id: str) -> None:
        self.sb.table("persons").delete().eq("id", person_id).execute()

    def add_raw_face(self, person_id: str, embedding: list[Any], model: str) -> str:
        return (
            self.sb.table("faces")
            .insert({"person_id": person_id, "model": model, "embedding": embedding})
            .execute()
            .data[0]["id"]
        )

    def person(self, person_id: str) -> dict[str, Any] | None:
        rows = self.sb.table("persons").select("*").eq("id", person_id).execute().data
        return rows[0] if rows else None

    def faces(self, person_id: str) -> list[dict[str, Any]]:
        return self.sb.table("faces").select("*").eq("person_id", person_id).execute().data

    def event_ids(self, device_id: str) -> list[str]:
        ids: list[str] = []
        start = 0
        while True:
            page = (
                self.sb.table("access_events")
                .select("id")
                .eq("device_id", device_id)
                .range(start, start + 999)
                .execute()
                .data
            )
            ids += [r["id"] for r in page]
            if len(page) < 1000:
                return ids
            start += 1000

    def close(self) -> None:
        self._http.close()
