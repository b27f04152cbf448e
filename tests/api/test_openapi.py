"""The OpenAPI document and the Flask routes agree, both ways, and on the role of each route."""

from __future__ import annotations

import re

from admin_api.auth import required_role
from admin_api.openapi import build_spec
from tests.api.conftest import REPO_ROOT, Api
from tests.api.test_auth import assert_error

METHODS = {"get", "post", "put", "patch", "delete"}


def _routes(api: Api) -> dict[tuple[str, str], str]:
    out = {}
    for rule in api.app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        role = required_role(api.app.view_functions[rule.endpoint]) or "public"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out[(path, method.lower())] = role
    return out


def _operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (path, method): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def test_every_route_is_documented_and_every_operation_exists(api: Api) -> None:
    routes, ops = _routes(api), _operations(build_spec())
    assert set(routes) - set(ops) == set(), "routes missing from the OpenAPI document"
    assert set(ops) - set(routes) == set(), "documented operations without a route"


def test_documented_roles_are_the_enforced_roles(api: Api) -> None:
    routes, ops = _routes(api), _operations(build_spec())
    for key, op in ops.items():
        assert op["x-role"] == routes[key], key
        assert ("security" in op and op["security"] == []) == (routes[key] == "public"), key
        if routes[key] == "admin":
            assert "403" in op["responses"], key


def test_path_parameters_are_declared(api: Api) -> None:
    for (path, _), op in _operations(build_spec()).items():
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{([^}]+)}", path)), path


def test_served_document_needs_a_token_and_is_the_built_one(api: Api) -> None:
    assert_error(api.client().get("/openapi.json"), 401)
    served = api.viewer.get("/openapi.json").json()
    assert served == build_spec()
    assert served["openapi"].startswith("3.1")


def test_documented_photo_refusals_are_enrolments_own() -> None:
    from admin_api.openapi import PHOTO_REFUSALS
    from appliance.enroll import REFUSAL_MESSAGES

    assert set(PHOTO_REFUSALS) == set(REFUSAL_MESSAGES)


def test_the_api_starts_without_loading_the_face_models() -> None:
    import subprocess
    import sys

    code = (
        "import sys, admin_api.app, admin_api.__main__; "
        "print('dlib' in sys.modules or 'face_recognition' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert out.stdout.strip() == "False", out.stderr


def test_first_hour_behaviour_is_documented() -> None:
    paths = build_spec()["paths"]
    frame = paths["/api/v1/door/frame"]["get"]["responses"]["200"]
    assert frame["headers"]["X-Frame-Time"]["schema"]["format"] == "date-time"
    assert set(paths["/api/v1/people/{person_id}/faces"]["post"]["responses"]) >= {"200", "201"}
    for pointer in ("/", "/api/v1/"):
        assert paths[pointer]["get"]["x-role"] == "public", pointer
