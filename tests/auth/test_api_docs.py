"""/docs and /openapi.json: for signed-in users only, Swagger UI from the service itself (no CDN).

Found in issue 11: both were open to anyone, and /docs loaded Swagger from a CDN (blank on an intranet).
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.auth.fixtures import Accounts


def test_the_schema_and_the_docs_need_a_sign_in(client: TestClient, accounts: Accounts) -> None:
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/docs").status_code == 401
    assert client.get("/redoc").status_code in (401, 404)
    accounts.add("zhang", "officer")
    headers = accounts.headers("zhang")
    schema = client.get("/openapi.json", headers=headers)
    assert schema.status_code == 200
    assert "/api/v1/items" in schema.json()["paths"]


def test_swagger_ui_comes_from_the_service_itself(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    page = client.get("/docs", headers=accounts.headers("zhang"))
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, page.text
    assert all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    assert "<script>" not in page.text, "no inline script: the CSP allows none"
    csp = page.headers["content-security-policy"]
    assert "cdn" not in csp
    assert "unsafe-inline' https" not in csp
    for path in sources:
        asset = client.get(path, headers=accounts.headers("zhang"))
        assert asset.status_code == 200, path
        assert len(asset.content) > 20, path
