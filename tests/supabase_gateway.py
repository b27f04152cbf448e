"""A stand-in for a Supabase project, for tests and benchmarks: real PostgreSQL, real JWTs.

Three parts:

- :class:`ThrowawayPostgres` starts a private PostgreSQL cluster (initdb + pg_ctl on a free
  loopback port, as the ``postgres`` user when run as root) and removes it afterwards.
- :data:`SUPABASE_BOOTSTRAP_SQL` creates the few Supabase pieces the central migrations rely on
  (roles, ``auth.users``, ``auth.uid()``/``auth.jwt()``, Supabase's default grants), so the very
  files a user applies to their Supabase project are applied here unchanged.
- :class:`Gateway` serves the endpoints supabase-py calls: password sign-in and token refresh,
  admin user creation, and ``/rest/v1/rpc/<fn>``. Each RPC checks the JWT and runs in one
  transaction as the JWT's role with ``request.jwt.claims`` set, the way PostgREST does; errors
  are mapped to PostgREST's codes and statuses. Fault knobs (dropped connections, delays,
  5xx replies, a held reply, restarts, a skewed server clock) let tests break the network.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sync" / "supabase" / "migrations"

# --- the throwaway cluster --------------------------------------------------------------------


def find_pg_bindir() -> Path | None:
    """The PostgreSQL server binaries (Debian layout), or None when not installed."""
    override = os.environ.get("FACEGATE_TEST_PG_BINDIR")
    candidates = [Path(override)] if override else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for cand in candidates:
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """A private cluster in a temporary folder, trust auth, loopback only, fsync off."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="facegate-pg-"))
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_root:  # initdb refuses root: run the server tools as the postgres user
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr or proc.stdout}\n{tail}")

    def start(self) -> ThrowawayPostgres:
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --- the Supabase pieces the migrations rely on ------------------------------------------------

SUPABASE_BOOTSTRAP_SQL = """
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;

create schema extensions;
create extension pgcrypto schema extensions;

create schema auth;
create table auth.users (
    id uuid primary key default gen_random_uuid(),
    aud text default 'authenticated',
    role text default 'authenticated',
    email text unique,
    encrypted_password text,
    email_confirmed_at timestamptz,
    raw_app_meta_data jsonb default '{}',
    raw_user_meta_data jsonb default '{}',
    created_at timestamptz default now(),
    updated_at timestamptz default now()
);
create function auth.jwt() returns jsonb language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
create function auth.uid() returns uuid language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
                   )::uuid
$$;
create function auth.role() returns text language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))
$$;
grant usage on schema auth to anon, authenticated, service_role;
grant execute on all functions in schema auth to anon, authenticated, service_role;

-- Supabase's defaults: everything created in public is open to the API roles until revoked.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated,
    service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated,
    service_role;
"""


def bootstrap_central(dsn: str, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Create the Supabase pieces, then apply the central migrations in order; return names."""
    files = sorted(migrations_dir.glob("*.sql"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SUPABASE_BOOTSTRAP_SQL)
        for path in files:
            try:
                conn.execute(path.read_text())
            except psycopg.Error as exc:
                raise RuntimeError(f"migration {path.name} failed: {exc}") from exc
    return [p.name for p in files]


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


@contextmanager
def central_stack() -> Iterator[tuple[Gateway, dict[str, str]]]:
    """A throwaway cluster with the central migrations applied and the gateway in front of it:
    yields the gateway and what a client needs (url, anon and service keys, dsn); everything
    is stopped on exit. :class:`PostgresMissing` when the server binaries are not installed."""
    bindir = find_pg_bindir()
    if bindir is None:
        raise PostgresMissing("PostgreSQL server binaries not found (install `postgresql`)")
    pg = ThrowawayPostgres(bindir).start()
    try:
        dsn = pg.create_database("central")
        bootstrap_central(dsn)
        gw = Gateway(dsn).start()
        try:
            yield (
                gw,
                {"url": gw.url, "anon": gw.anon_key, "service": gw.service_role_key, "dsn": dsn},
            )
        finally:
            gw.close()
    finally:
        pg.stop()


# --- the gateway ---------------------------------------------------------------------------------


class _Drop(Exception):
    """Close the client's connection without a reply."""


@dataclass
class Fault:
    """One injected failure for requests whose path contains ``path``.

    kinds: ``drop_before`` (connection closed, nothing executed), ``drop_after`` (executed and
    committed, then the connection closed: the reply is lost), ``delay`` (executed, reply held
    ``seconds``), ``status`` (reply ``status`` with a non-JSON body, nothing executed), ``hold``
    (executed; ``reached`` is set and the reply waits until ``release`` is set),
    ``drop_before_commit`` (executed, rolled back, connection closed).
    """

    kind: str
    path: str = "/rest/v1/rpc/"
    times: int = 1
    skip: int = 0  # matching requests to let through before this fault fires
    seconds: float = 0.0
    status: int = 500
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class _ConnPool:
    """A tiny pool: connections are reused, broken ones dropped."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.dsn, autocommit=True)
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if (ok or not conn.broken) and not conn.closed and not conn.info.transaction_status:
                self._idle.put(conn)
            else:
                conn.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _status_for(sqlstate: str | None, role: str) -> int:
    """PostgREST's status for a PostgreSQL error."""
    if not sqlstate:
        return 500
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate in ("23505", "23503"):
        return 409
    if sqlstate.startswith("08"):
        return 503
    if sqlstate in ("42883", "42P01"):
        return 404
    if sqlstate == "57014":
        return 500
    return 400


class Gateway:
    """Supabase Auth + PostgREST RPC over a real database, with fault knobs for tests."""

    def __init__(
        self, dsn: str, *, access_token_seconds: int = 3600, clock_skew_seconds: int = 30
    ) -> None:
        self.admin_dsn = dsn  # superuser: auth.users, like GoTrue's own role
        self.api_dsn = dsn.replace("user=postgres", "user=authenticator")
        self.secret = secrets.token_urlsafe(32)
        self.access_token_seconds = access_token_seconds
        self.clock_skew_seconds = clock_skew_seconds
        self.clock_offset = 0.0  # seconds added to the gateway's clock when checking expiry
        self.anon_key = self._sign({"role": "anon", "iss": "supabase"}, forever=True)
        self.service_role_key = self._sign(
            {"role": "service_role", "iss": "supabase"}, forever=True
        )
        self.port = free_port()
        self.calls: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._refresh: dict[str, dict[str, Any]] = {}
        self._revoked_sessions: set[str] = set()
        self._api_pool = _ConnPool(self.api_dsn)
        self._admin_pool = _ConnPool(self.admin_dsn)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._sigs: dict[str, list[dict[str, Any]]] = {}

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gateway:
        gateway = self

        class Handler(_Handler):
            gw = gateway

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.handle_error = lambda request, client_address: None  # dropped sockets: quiet
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="supabase-gateway",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and cut every open connection, as a crashed or restarted server does."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for sock in list(self._open):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._open.clear()
        if self._thread:
            self._thread.join(timeout=5)
        self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._api_pool.close()
        self._admin_pool.close()

    # --- knobs ---------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            for f in self.faults:
                f.release.set()
            self.faults.clear()

    def _take_fault(self, path: str) -> Fault | None:
        fired = None
        with self._lock:
            for f in self.faults:
                if f.path not in path or f.times <= 0:
                    continue
                if f.skip > 0:
                    f.skip -= 1
                elif fired is None:
                    f.times -= 1
                    fired = f
        return fired

    def revoke_all_sessions(self) -> None:
        """Every refresh token stops working (as after a lost, retried refresh)."""
        with self._lock:
            for info in self._refresh.values():
                self._revoked_sessions.add(info["session_id"])

    # --- tokens --------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def _sign(self, claims: dict[str, Any], forever: bool = False) -> str:
        now = int(self.now())  # tokens follow the gateway's clock, skewed or not
        body = {"iat": now, **claims}
        body["exp"] = now + (10 * 365 * 86400 if forever else self.access_token_seconds)
        return jwt.encode(body, self.secret, algorithm="HS256")

    def claims_for(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of a bearer token; raise _ApiError as PostgREST would."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return {"role": "anon"}
        token = authorization.split(" ", 1)[1].strip()
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                options={
                    "verify_exp": False,
                    "verify_aud": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise _ApiError(401, "PGRST301", f"JWSError {exc}") from None
        if claims.get("iat") is not None and claims["iat"] > self.now() + self.clock_skew_seconds:
            raise _ApiError(401, "PGRST301", "JWT issued at future")
        if claims.get("exp") is not None and claims["exp"] < self.now() - self.clock_skew_seconds:
            raise _ApiError(401, "PGRST303", "JWT expired")
        return claims

    def _user_json(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(row["id"]),
            "aud": "authenticated",
            "role": "authenticated",
            "email": row["email"],
            "app_metadata": {
                "provider": "email",
                "providers": ["email"],
                **(row.get("raw_app_meta_data") or {}),
            },
            "user_metadata": row.get("raw_user_meta_data") or {},
            "created_at": row["created_at"].isoformat(),
            "email_confirmed_at": (
                row["email_confirmed_at"].isoformat() if row.get("email_confirmed_at") else None
            ),
        }

    def _session(self, user: dict[str, Any], session_id: str) -> dict[str, Any]:
        access = self._sign(
            {
                "sub": str(user["id"]),
                "role": "authenticated",
                "aud": "authenticated",
                "email": user["email"],
                "session_id": session_id,
            }
        )
        refresh = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[refresh] = {
                "user_id": str(user["id"]),
                "session_id": session_id,
                "used": False,
            }
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.access_token_seconds,
            "expires_at": int(self.now()) + self.access_token_seconds,
            "refresh_token": refresh,
            "user": self._user_json(user),
        }

    def _find_user(self, where: str, params: list[Any]) -> dict[str, Any] | None:
        with self._admin_pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            return cur.execute(f"select * from auth.users where {where}", params).fetchone()

    # --- auth endpoints ------------------------------------------------------------------------

    def auth_token(self, grant: str, body: dict[str, Any]) -> tuple[int, Any]:
        if grant == "password":
            user = self._find_user(
                "email = %s and encrypted_password = extensions.crypt(%s, encrypted_password)",
                [str(body.get("email", "")), str(body.get("password", ""))],
            )
            if user is None:
                return 400, {
                    "code": 400,
                    "error_code": "invalid_credentials",
                    "msg": "Invalid login credentials",
                }
            return 200, self._session(user, str(uuid.uuid4()))
        if grant == "refresh_token":
            token = str(body.get("refresh_token", ""))
            with self._lock:
                info = self._refresh.get(token)
                if info is None or info["session_id"] in self._revoked_sessions:
                    return 400, {
                        "code": 400,
                        "error_code": "refresh_token_not_found",
                        "msg": "Invalid Refresh Token: Refresh Token Not Found",
                    }
                if info["used"]:  # reuse: GoTrue revokes the whole session
                    self._revoked_sessions.add(info["session_id"])
                    return 400, {
                        "code": 400,
                        "error_code": "refresh_token_already_used",
                        "msg": "Invalid Refresh Token: Already Used",
                    }
                info["used"] = True
            user = self._find_user("id = %s", [info["user_id"]])
            if user is None:
                return 400, {"code": 400, "error_code": "user_not_found", "msg": "User not found"}
            return 200, self._session(user, info["session_id"])
        return 400, {
            "code": 400,
            "error_code": "unsupported_grant_type",
            "msg": f"unsupported grant_type {grant}",
        }

    def admin_create_user(self, body: dict[str, Any]) -> tuple[int, Any]:
        email, password = body.get("email"), body.get("password")
        if not email or not password:
            return 400, {
                "code": 400,
                "error_code": "validation_failed",
                "msg": "email and password are required",
            }
        try:
            with self._admin_pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                row = cur.execute(
                    "insert into auth.users (email, encrypted_password, email_confirmed_at, "
                    "raw_app_meta_data, raw_user_meta_data) values (%s, "
                    "extensions.crypt(%s, extensions.gen_salt('bf', 4)), "
                    "case when %s then now() end, %s, %s) returning *",
                    [
                        email,
                        password,
                        bool(body.get("email_confirm")),
                        Jsonb(body.get("app_metadata") or {}),
                        Jsonb(body.get("user_metadata") or {}),
                    ],
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            return 422, {
                "code": 422,
                "error_code": "email_exists",
                "msg": "A user with this email address has already been registered",
            }
        return 200, self._user_json(row)

    def admin_delete_user(self, user_id: str) -> tuple[int, Any]:
        with self._admin_pool.connection() as conn:
            conn.execute("delete from auth.users where id = %s", [user_id])
        return 200, {}

    # --- PostgREST RPC -------------------------------------------------------------------------

    def _signatures(self, fn: str) -> list[dict[str, Any]]:
        if fn not in self._sigs:
            with self._admin_pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                self._sigs[fn] = cur.execute(
                    "select p.proargnames as names, p.pronargs as nargs, "
                    "p.pronargdefaults as ndefaults, p.proretset as retset, "
                    "format_type(p.prorettype, null) as rettype, "
                    "array(select format_type(t, null) from unnest(p.proargtypes) t) as types "
                    "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                    "where n.nspname = 'public' and p.proname = %s",
                    [fn],
                ).fetchall()
        return self._sigs[fn]

    def rpc(
        self, fn: str, body: Any, claims: dict[str, Any], fault: Fault | None
    ) -> tuple[int, str | None]:
        if not isinstance(body, dict):
            raise _ApiError(400, "PGRST102", "RPC arguments must be a JSON object")
        chosen = None
        for sig in self._signatures(fn):
            names = list(sig["names"] or [])[: sig["nargs"]]
            required = set(names[: sig["nargs"] - sig["ndefaults"]])
            if set(body) <= set(names) and required <= set(body):
                chosen = (sig, names)
                break
        if chosen is None:
            raise _ApiError(
                404,
                "PGRST202",
                f"Could not find the function public.{fn}({', '.join(sorted(body))})",
            )
        sig, names = chosen
        types = dict(zip(names, sig["types"], strict=False))
        args = [n for n in names if n in body]
        call = f"public.{fn}({', '.join(f'{n} => r.{n}' for n in args)})"
        columns = ", ".join(f"{n} {types[n]}" for n in args)
        source = f" from json_to_record(%s::json) as r({columns})" if args else ""
        if sig["rettype"] == "void":
            sql = f"select {call}{source}"
        elif sig["retset"]:
            sql = f"select coalesce(json_agg(x), '[]')::text from (select {call} as x{source}) s"
        else:
            sql = f"select to_json({call})::text{source}"
        role = str(claims.get("role") or "anon")
        with self._api_pool.connection() as conn:
            try:
                with conn.transaction():
                    conn.execute(
                        "select set_config('role', %s, true), "
                        "set_config('request.jwt.claims', %s, true), "
                        "set_config('request.method', 'POST', true), "
                        "set_config('request.path', %s, true), "
                        "set_config('search_path', 'public, extensions', true)",
                        [role, json.dumps(claims), f"/rpc/{fn}"],
                    )
                    row = conn.execute(sql, [json.dumps(body)] if args else None).fetchone()
                    if fault is not None and fault.kind == "drop_before_commit":
                        raise _Drop()
            except psycopg.Error as exc:
                diag = exc.diag
                raise _ApiError(
                    _status_for(exc.sqlstate, role),
                    exc.sqlstate or "PGRST000",
                    diag.message_primary or str(exc),
                    diag.message_detail,
                    diag.message_hint,
                ) from None
        if sig["rettype"] == "void":
            return 204, None
        return 200, row[0] if row else "null"

    def table(
        self, method: str, table: str, query: str, body: Any, claims: dict[str, Any]
    ) -> tuple[int, str | None]:
        """PostgREST's table endpoints, enough for RLS tests: select/insert/update/delete with
        ``col=eq.value`` filters, run as the JWT's role like an RPC."""
        params = parse_qs(query)
        ident = re.compile(r"^[a-z_][a-z0-9_]*$")
        if not ident.match(table):
            raise _ApiError(404, "PGRST205", f"Could not find the table public.{table}")
        where, values = [], []
        for key, vals in params.items():
            if key in ("select", "limit", "offset", "order", "columns"):
                continue
            if not ident.match(key) or not vals[0].startswith("eq."):
                raise _ApiError(400, "PGRST100", f"unsupported filter {key}={vals[0]}")
            where.append(f"{table}.{key}::text = %s")
            values.append(vals[0][3:])
        clause = f" where {' and '.join(where)}" if where else ""
        if method == "GET":
            cols = params.get("select", ["*"])[0]
            if cols != "*" and not all(ident.match(c) for c in cols.split(",")):
                raise _ApiError(400, "PGRST100", f"unsupported select {cols}")
            sql = (
                f"select coalesce(json_agg(t), '[]')::text from "
                f"(select {cols} from public.{table}{clause}) t"
            )
            args: list[Any] = values
            status = 200
        elif method == "POST":
            rows = body if isinstance(body, list) else [body]
            keys = sorted({k for r in rows for k in r})
            if not all(ident.match(k) for k in keys):
                raise _ApiError(400, "PGRST204", "bad column name")
            cols = ", ".join(keys)
            sql = (
                f"with ins as (insert into public.{table} ({cols}) select {cols} from "
                f"json_populate_recordset(null::public.{table}, %s::json) returning 1) "
                "select '[]'"
            )
            args, status = [json.dumps(rows)], 201
        elif method == "PATCH":
            keys = sorted(body)
            if not all(ident.match(k) for k in keys):
                raise _ApiError(400, "PGRST204", "bad column name")
            sets = ", ".join(f"{k} = r.{k}" for k in keys)
            sql = (
                f"with upd as (update public.{table} set {sets} from "
                f"json_populate_record(null::public.{table}, %s::json) r{clause} "
                "returning 1) select '[]'"
            )
            args, status = [json.dumps(body), *values], 200
        elif method == "DELETE":
            sql = f"with del as (delete from public.{table}{clause} returning 1) select '[]'"
            args, status = values, 200
        else:
            raise _ApiError(405, "PGRST117", f"unsupported method {method}")
        role = str(claims.get("role") or "anon")
        with self._api_pool.connection() as conn:
            try:
                with conn.transaction():
                    conn.execute(
                        "select set_config('role', %s, true), "
                        "set_config('request.jwt.claims', %s, true)",
                        [role, json.dumps(claims)],
                    )
                    row = conn.execute(sql, args).fetchone()
            except psycopg.Error as exc:
                raise _ApiError(
                    _status_for(exc.sqlstate, role),
                    exc.sqlstate or "PGRST000",
                    exc.diag.message_primary or str(exc),
                    exc.diag.message_detail,
                    exc.diag.message_hint,
                ) from None
        return status, row[0]


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, "details": details, "hint": hint}


class _Handler(BaseHTTPRequestHandler):
    gw: Gateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet server
        pass

    def setup(self) -> None:
        super().setup()
        with self.gw._lock:
            self.gw._open.add(self.connection)

    def finish(self) -> None:
        with self.gw._lock:
            self.gw._open.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _reply(self, status: int, body: Any, raw: str | None = None) -> None:
        with self.gw._lock:
            self.gw.calls[f"status:{status}"] += 1
        data = b"" if status == 204 else (raw if raw is not None else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self, method: str) -> None:
        gw = self.gw
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlparse(self.path)
        path = url.path
        with gw._lock:
            gw.calls[path] += 1
        fault = gw._take_fault(path)
        if fault is not None and fault.kind == "drop_before":
            return self._drop()
        if fault is not None and fault.kind == "status":
            data = b"<html>upstream trouble</html>"
            self.send_response(fault.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self._reply(
                400,
                {
                    "code": "PGRST102",
                    "message": "Empty or invalid json",
                    "details": None,
                    "hint": None,
                },
            )
        try:
            status, payload, text = self._route(method, path, url.query, body, fault)
        except _Drop:
            return self._drop()
        except _ApiError as err:
            status, payload, text = err.status, err.body, None
        if fault is not None and fault.kind == "drop_after":
            return self._drop()
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "hold":
            fault.reached.set()
            fault.release.wait(60)
        try:
            self._reply(status, payload, text)
        except OSError:
            self.close_connection = True

    def _route(
        self, method: str, path: str, query: str, body: Any, fault: Fault | None
    ) -> tuple[int, Any, str | None]:
        gw = self.gw
        if path.startswith("/auth/v1/"):
            apikey = self.headers.get("apikey") or ""
            if apikey not in (gw.anon_key, gw.service_role_key):
                return 401, {"message": "Invalid API key"}, None
            sub = path[len("/auth/v1/") :]
            if sub == "token" and method == "POST":
                grant = parse_qs(query).get("grant_type", [""])[0]
                status, payload = gw.auth_token(grant, body)
                return status, payload, None
            if sub.startswith("admin/"):
                try:
                    claims = gw.claims_for(self.headers.get("Authorization"))
                except _ApiError:
                    claims = {}
                if claims.get("role") != "service_role":
                    return (
                        403,
                        {"code": 403, "error_code": "not_admin", "msg": "User not allowed"},
                        None,
                    )
                if sub == "admin/users" and method == "POST":
                    status, payload = gw.admin_create_user(body)
                    return status, payload, None
                if sub.startswith("admin/users/") and method == "DELETE":
                    status, payload = gw.admin_delete_user(sub.rsplit("/", 1)[1])
                    return status, payload, None
            if sub == "logout":
                return 204, None, None
            return 404, {"code": 404, "error_code": "not_found", "msg": "not found"}, None
        if path.startswith("/rest/v1/rpc/") and method == "POST":
            claims = gw.claims_for(self.headers.get("Authorization"))
            status, text = gw.rpc(path.rsplit("/", 1)[1], body, claims, fault)
            return status, None, text
        if path.startswith("/rest/v1/") and path.count("/") == 3:
            claims = gw.claims_for(self.headers.get("Authorization"))
            status, text = gw.table(method, path.rsplit("/", 1)[1], query, body, claims)
            return status, None, text
        return (
            404,
            {"code": "PGRST125", "message": f"Invalid path {path}", "details": None, "hint": None},
            None,
        )


def utc_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), UTC).isoformat()
