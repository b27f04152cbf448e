"""The API's bare addresses say where to go: the console and the OpenAPI document."""

from __future__ import annotations

import requests

from tests.api.conftest import Api


def test_root_and_api_root_point_to_the_console_and_the_openapi_document(api: Api) -> None:
    server = api.client().base_url.removesuffix("/api/v1")
    for url in (f"{server}/", f"{server}/api/v1/"):
        resp = requests.get(url, timeout=10)  # no token: a first visitor has none yet
        assert resp.status_code == 200, url
        links = resp.json()
        assert links["openapi"].startswith("/api/v1/openapi.json")
        assert f":{api.settings.ui_port}/" in links["console"]
