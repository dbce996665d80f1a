"""Source health lives in the shared database: what a crawl on one machine recorded, every API process shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.auth.fixtures import Accounts

SOURCES = """sources:
  - id: far-mailbox
    name: 远端信箱
    channel: mailbox
    type: html
    start_urls: ["https://www.example.gov.cn/xx/"]
    interval: 30m
    list:
      items: "li"
      url: "a::attr(href)"
    fields:
      title: "h1::text"
"""

# What a worker on another machine runs after a crawl met a captcha page (its own data dir, same database).
RECORD = """
from crawlers.health import record_crawl
from service.settings import load_settings
record = record_crawl(load_settings(), "far-mailbox", {"challenge": True, "pages": 1, "entries": 0})
print(record.consecutive_failures)
"""


@pytest.fixture
def one_source(app_settings: Settings) -> Settings:
    (app_settings.config_dir / "sources.yaml").write_text(SOURCES, encoding="utf-8")
    return app_settings


def test_health_recorded_by_another_process_shows_in_this_api(
    one_source: Settings, client: TestClient, accounts: Accounts, tmp_path: Path
) -> None:
    app_settings = one_source
    accounts.add("zhuanyuan", "officer")
    headers = accounts.headers("zhuanyuan")
    before = client.get("/api/v1/sources", headers=headers).json()["results"]
    assert [(s["id"], s["health"]) for s in before] == [("far-mailbox", None)]

    env = {
        **os.environ,
        "YUQING_CONFIG_DIR": str(app_settings.config_dir),
        "YUQING_DATA_DIR": str(tmp_path / "other-machine"),
        "YUQING_DATABASE__URL": app_settings.database_url,
    }
    done = subprocess.run([sys.executable, "-c", RECORD], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"

    health = client.get("/api/v1/sources", headers=headers).json()["results"][0]["health"]
    assert health["healthy"] is False
    assert health["consecutive_failures"] == 1
    assert "验证" in health["last_failure"]
