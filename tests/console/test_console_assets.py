"""The console needs nothing from outside the service: vendored ECharts, no foreign asset, login first."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.console.conftest import ROOT, ConsoleServer

VENDORED = ROOT / "service" / "console" / "static" / "vendor" / "echarts.min.js"
NODE_MODULES_COPY = ROOT / "console" / "node_modules" / "echarts" / "dist" / "echarts.min.js"
PAGES = ["/alerts", "/tickets", "/rules", "/dashboard", "/ledger", "/sources", "/sla", "/users", "/audit", "/password"]
# src=, href=, url(...) and import/fetch targets: any of them on another host breaks an offline intranet.
ASSET_REF = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|from\s+["'](https?:)?//""", re.I
)


def test_served_echarts_is_the_pinned_npm_build(console_server: ConsoleServer) -> None:
    served = httpx.get(f"{console_server.base_url}/static/vendor/echarts.min.js", timeout=10)
    assert served.status_code == 200
    assert served.content == VENDORED.read_bytes()
    assert b"echarts" in served.content[:2000].lower()
    if NODE_MODULES_COPY.exists():
        assert served.content == NODE_MODULES_COPY.read_bytes(), "run scripts/build-console.sh and keep the copy"
    lock = (ROOT / "console" / "package-lock.json").read_text(encoding="utf-8")
    pinned = re.search(r'"echarts":\s*"(\d+\.\d+\.\d+)"', (ROOT / "console" / "package.json").read_text())
    assert pinned, "echarts must be pinned to an exact version in console/package.json"
    assert f'"version": "{pinned.group(1)}"' in lock


def test_anonymous_visitor_is_sent_to_login(console_server: ConsoleServer) -> None:
    for path in [*PAGES, "/tickets/1", "/"]:
        response = httpx.get(console_server.base_url + path, follow_redirects=False, timeout=10)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login"), path
    login = httpx.get(console_server.base_url + "/login", timeout=10)
    assert login.status_code == 200
    assert "登录" in login.text
    assert not ASSET_REF.search(login.text)


@pytest.mark.parametrize("username", ["officer1", "env1"])
def test_pages_reference_no_other_host_and_no_inline_script(console_server: ConsoleServer, username: str) -> None:
    static_dir = ROOT / "service" / "console" / "static"
    own_files = [p for p in static_dir.rglob("*") if p.suffix in (".js", ".css") and "vendor" not in p.parts]
    assert own_files
    with console_server.client(username) as client:
        for path in PAGES:
            response = client.get(path)
            if response.status_code == 403:  # a page this role may not open still must not leak anything
                assert "无权访问" in response.text
            else:
                assert response.status_code == 200, path
            html = response.text
            assert not ASSET_REF.search(html), f"{path} loads an asset from another host"
            # CSP forbids inline script: every <script> is a src= file or an inert JSON data block.
            for tag in re.findall(r"<script\b[^>]*>", html):
                assert "src=" in tag or 'type="application/json"' in tag, f"{path}: inline script {tag}"
            assert not re.search(r"\son[a-z]+\s*=", html), f"{path}: inline event handler"
            assert "script-src 'self'" in response.headers["content-security-policy"]
            for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
                assert client.get(ref).status_code == 200, ref
    for file in own_files:
        text = file.read_text(encoding="utf-8")
        assert not ASSET_REF.search(text), f"{file.name} loads an asset from another host"
        for html_sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write"):
            assert html_sink not in text, f"{file.name} writes HTML from strings ({html_sink})"


def test_department_user_sees_only_own_menu_and_department(console_server: ConsoleServer) -> None:
    with console_server.client("env1") as client:
        page = client.get("/tickets").text
        assert "市生态环境局" in page
        assert "市水务局" not in page
        assert 'href="/rules"' not in page
        assert 'href="/users"' not in page
        # Its own alerts and dashboard are in its menu (the API serves them only its own department).
        assert 'href="/alerts"' in page
        assert 'href="/dashboard"' in page
        assert client.get("/rules").status_code == 403
        assert client.get("/users").status_code == 403
        assert client.get("/", follow_redirects=False).headers["location"] == "/tickets"
