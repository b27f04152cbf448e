"""Fixtures for the sync tests: a throwaway PostgreSQL cluster with the central migrations, the
Supabase stand-in gateway in front of it, doors provisioned on it, and the face fixtures' real
embeddings.

With FACEGATE_TEST_SUPABASE_URL, FACEGATE_TEST_SUPABASE_ANON_KEY and
FACEGATE_TEST_SUPABASE_SERVICE_ROLE_KEY set, the tests using ``central`` also run against that
real project (its migrations applied from sync/supabase/migrations).
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from appliance.settings import Settings, load_settings
from appliance.store import open_db
from sync.client import CentralClient
from sync.engine import RetryPolicy, SyncEngine
from tests.supabase_gateway import Gateway, ThrowawayPostgres, bootstrap_central, find_pg_bindir
from tests.sync.central import Central, GatewayCentral, SupabaseCentral, unique

SUPABASE_ENV = (
    "FACEGATE_TEST_SUPABASE_URL",
    "FACEGATE_TEST_SUPABASE_ANON_KEY",
    "FACEGATE_TEST_SUPABASE_SERVICE_ROLE_KEY",
)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayPostgres]:
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(install Debian's `postgresql`, or set FACEGATE_TEST_PG_BINDIR)"
        )
    cluster = ThrowawayPostgres(bindir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def central_dsn(pg_cluster: ThrowawayPostgres) -> str:
    dsn = pg_cluster.create_database("central")
    bootstrap_central(dsn)
    return dsn


@pytest.fixture(scope="session")
def gateway(central_dsn: str) -> Iterator[Gateway]:
    gw = Gateway(central_dsn).start()
    try:
        yield gw
    finally:
        gw.close()


@pytest.fixture(autouse=True)
def _calm_gateway(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts and ends with a healthy gateway: no faults, true clock."""
    yield
    if "gateway" in request.fixturenames:
        gw: Gateway = request.getfixturevalue("gateway")
        gw.clear_faults()
        gw.clock_offset = 0.0
        gw.access_token_seconds = 3600
        if gw._server is None:
            gw.start()


@pytest.fixture(scope="session")
def gateway_central(gateway: Gateway, central_dsn: str) -> GatewayCentral:
    return GatewayCentral(gateway, central_dsn)


def _central_params() -> list:
    real = pytest.param(
        "supabase",
        marks=pytest.mark.skipif(
            not all(os.environ.get(k) for k in SUPABASE_ENV),
            reason="real-Supabase variant: set "
            + ", ".join(SUPABASE_ENV)
            + " (a project with sync/supabase/migrations applied)",
        ),
    )
    return ["gateway", real]


@pytest.fixture(scope="session", params=_central_params())
def central(request: pytest.FixtureRequest) -> Iterator[Central]:
    """The central store the test runs against: the local gateway, or a real project."""
    if request.param == "gateway":
        yield request.getfixturevalue("gateway_central")
        return
    backend = SupabaseCentral(*(os.environ[k] for k in SUPABASE_ENV))
    try:
        yield backend
    finally:
        backend.close()


# --- doors -------------------------------------------------------------------------------------


@dataclass
class Door:
    """One provisioned door: its settings, its local store and its sync engine."""

    site: str
    name: str
    env: dict[str, str]
    settings: Settings
    db: sqlite_utils.Database
    engine: SyncEngine
    client: CentralClient

    @property
    def email(self) -> str:
        return self.env["FACEGATE_DEVICE_EMAIL"]

    def subprocess_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
        env.update(self.env)
        env["FACEGATE_DATA_DIR"] = str(self.settings.data_dir)
        env["FACEGATE_PIN_FACTORY"] = "mock"
        env["FACEGATE_SYNC_BATCH_SIZE"] = str(self.settings.sync_batch_size)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        return env


FAST_RETRY = RetryPolicy(attempts=6, base_seconds=0.05, cap_seconds=0.3)


@pytest.fixture
def make_door(tmp_path: Path) -> Iterator:
    """Provision a door on a central store and build its engine (fast retries, short timeout)."""
    made: list[Door] = []

    def make(
        central: Central, site: str | None = None, *, batch: int = 200, timeout: float = 2.0
    ) -> Door:
        site = site or unique("site")
        name = unique("door")
        env = central.provision(site, name)
        data_dir = tmp_path / name
        settings = load_settings(
            data_dir=data_dir,
            pin_factory="mock",
            door_name=name,
            supabase_url=env["FACEGATE_SUPABASE_URL"],
            supabase_anon_key=env["FACEGATE_SUPABASE_ANON_KEY"],
            device_email=env["FACEGATE_DEVICE_EMAIL"],
            device_password=env["FACEGATE_DEVICE_PASSWORD"],
            sync_batch_size=batch,
        )
        db = open_db(settings.db_path)
        client = CentralClient(
            settings.supabase_url,
            env["FACEGATE_SUPABASE_ANON_KEY"],
            settings.device_email,
            env["FACEGATE_DEVICE_PASSWORD"],
            timeout=timeout,
        )
        engine = SyncEngine(
            settings, db, client, stop=threading.Event(), retry=FAST_RETRY, rng=random.Random(7)
        )
        door = Door(site, name, env, settings, db, engine, client)
        made.append(door)
        return door

    yield make
    for door in made:
        door.engine.stop.set()
        door.client.close()
        door.db.close()


# --- faces -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceVectors:
    model: str
    obama: np.ndarray  # enrolment photo
    obama_probe: np.ndarray  # another photo of him
    biden: np.ndarray


@pytest.fixture(scope="session")
def face_vectors(people_dir: Path, probes_dir: Path) -> FaceVectors:
    """Real 128-d encodings of the fixture photos (face_recognition, computed once)."""
    import face_recognition

    from appliance.faces import MODEL_NAME

    def encode(path: Path) -> np.ndarray:
        image = face_recognition.load_image_file(str(path))
        encodings = face_recognition.face_encodings(image)
        assert len(encodings) == 1, f"expected one face in {path}"
        return encodings[0].astype(np.float32)

    biden = sorted((people_dir / "joe_biden").glob("*.jpg"))[0]
    return FaceVectors(
        model=MODEL_NAME,
        obama=encode(people_dir / "barack_obama" / "obama.jpg"),
        obama_probe=encode(probes_dir / "barack_obama__1.jpg"),
        biden=encode(biden),
    )
