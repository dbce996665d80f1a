"""The console says when monitoring stopped: a red banner on every page while /healthz is degraded.

A running app (uvicorn on loopback, scheduler in process) whose SLA monitor breaks (its table renamed)
and is repaired again, seen in Debian's Chromium.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.settings import load_settings
from service.users.service import create_user
from tests.auth.fixtures import PASSWORD

pytestmark = pytest.mark.browser
WAIT = 90.0


def _wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout}s")


@pytest.fixture
def app_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(config)
    settings.scheduler.sla_interval_seconds = 1
    settings.scheduler.watchdog_seconds = 0.5
    settings.scheduler.stale_min_seconds = 6
    api = create_app(settings, with_scheduler=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait_for("the server", lambda: server.started)
    ctx = api.state.ctx
    with ctx.db.session() as session:
        create_user(
            session, username="officer1", password=PASSWORD, role="officer", department=None, policy=settings.security
        )
    yield f"http://127.0.0.1:{port}", api
    server.should_exit = True
    thread.join(timeout=60)


def test_the_console_shows_a_banner_while_a_job_is_stalled(chromium, app_url) -> None:
    url, api = app_url
    context = chromium.new_context(base_url=url, locale="zh-CN")
    context.set_default_timeout(30000)
    try:
        login = context.request.post("/api/v1/auth/login", data={"username": "officer1", "password": PASSWORD})
        assert login.ok, login.text()
        page = context.new_page()
        _wait_for("a healthy start", lambda: httpx.get(f"{url}/healthz", timeout=10).status_code == 200)
        page.goto("/alerts")
        page.wait_for_timeout(1500)
        assert not page.locator("#monitor-banner").is_visible()

        db_path = api.state.ctx.db.engine.url.database
        with sqlite3.connect(db_path, timeout=60) as conn:
            conn.execute("ALTER TABLE tickets RENAME TO tickets_away")
        _wait_for("degraded health", lambda: httpx.get(f"{url}/healthz", timeout=10).status_code == 503)
        page.reload()
        banner = page.locator("#monitor-banner")
        banner.wait_for(state="visible")
        text = banner.text_content() or ""
        assert "监测异常" in text
        assert "时限监控" in text
        assert "最近错误" in text

        with sqlite3.connect(db_path, timeout=60) as conn:
            conn.execute("ALTER TABLE tickets_away RENAME TO tickets")
        _wait_for("healthy again", lambda: httpx.get(f"{url}/healthz", timeout=10).status_code == 200)
        page.reload()
        page.wait_for_timeout(1500)
        assert not banner.is_visible()
    finally:
        context.close()
