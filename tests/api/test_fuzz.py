"""Fuzz every operation from the API's own OpenAPI document: no input may cause a 5xx.

Bounded and reproducible (derandomized, a few dozen examples per operation) to stay fast. The
appliance's part is played by a thread so that unlocks are answered.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from admin_api.openapi import build_spec
from appliance import store
from tests.api.conftest import Api
from tests.api.test_door import appliance_answering


@pytest.fixture(scope="module")
def api_schema(api: Api):
    return schemathesis.openapi.from_url(
        api.url + "/api/v1/openapi.json",
        headers={"Authorization": f"Bearer {api.admin_token}"},
    )


@pytest.fixture(scope="module")
def real_ids(api: Api) -> dict[str, str]:
    """Existing items, so that fuzzed bodies reach the code behind the 404 checks."""
    admin = api.admin
    person = admin.post("/people", json={"name": "Fuzz target"}).json()["id"]
    schedule = admin.post("/schedules", json={"name": "fuzz", "windows": []}).json()["id"]
    api.settings.snapshot_dir.mkdir(parents=True, exist_ok=True)
    (api.settings.snapshot_dir / "fuzz.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    store.insert_events(
        api.db,
        [
            {
                "id": "fuzz-event",
                "door": "fuzz",
                "kind": "access_granted",
                "snapshot_path": str(api.settings.snapshot_dir / "fuzz.jpg"),
            }
        ],
    )
    return {"person_id": person, "schedule_id": schedule, "event_id": "fuzz-event"}


@pytest.fixture(scope="module")
def answering_appliance(api: Api):
    with appliance_answering(api, "done", "unlocked"):
        yield


OPERATIONS = [
    (method.upper(), path)
    for path, item in build_spec()["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]


# schemathesis.pytest.from_fixture() fails under pytest 9 (request.node._nodeid is gone), so each
# operation is a parametrized test that runs schemathesis' hypothesis strategy itself.
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_breaks_the_api(
    method: str, path: str, api: Api, api_schema, answering_appliance, real_ids
) -> None:
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {api.admin_token}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=25,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        if method != "DELETE" and case.path_parameters:
            # fuzz the body and query of a real item; deletes keep their fuzzed (unknown) ids
            case.path_parameters = {k: real_ids.get(k, v) for k, v in case.path_parameters.items()}
        case.call_and_validate(
            base_url=api.url,
            headers=headers,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )

    check()
