"""`yuqing crawl` and `yuqing sources check` as a config author uses them, against the demo site."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from crawlers.demo.server import demo_sources_yaml, serve_demo
from tests.foundation.conftest import run_cli

# Crawls run niced below the server; the test waits on them, and on a loaded 2-core CI machine a niced crawl
# gets almost no CPU (a 12-item crawl took over 120 s at load 20). CRAWL_WAIT only bounds a failure.
UNNICED = {"YUQING_SCHEDULER__CRAWL_NICENESS": "0"}
CRAWL_WAIT = 240


@pytest.fixture(scope="module")
def demo_url():
    server, url = serve_demo(0, live_interval=0)
    yield url
    server.shutdown()


def _config(tmp_path: Path, demo_url: str) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    # The demo's own crawl section already turns politeness delays off for a loopback site.
    (config / "sources.yaml").write_text(demo_sources_yaml(demo_url), encoding="utf-8")
    return config


def test_crawl_prints_counts_and_a_recrawl_adds_nothing(tmp_path: Path, demo_url: str) -> None:
    config = _config(tmp_path, demo_url)
    env = {**UNNICED, "YUQING_DATA_DIR": str(tmp_path / "data")}
    first = run_cli("--config", str(config), "crawl", "demo-mailbox", env=env, timeout=CRAWL_WAIT)
    assert first.returncode == 0, first.stderr
    line = next(li for li in first.stdout.splitlines() if li.startswith("demo-mailbox:"))
    assert "new=12" in line
    assert "errors=0" in line
    again = run_cli("--config", str(config), "crawl", "demo-mailbox", env=env, timeout=CRAWL_WAIT)
    line = next(li for li in again.stdout.splitlines() if li.startswith("demo-mailbox:"))
    assert "new=0" in line
    assert "skipped=12" in line
    with sqlite3.connect(tmp_path / "data" / "items.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 12


def test_unknown_source_exits_2(tmp_path: Path, demo_url: str) -> None:
    config = _config(tmp_path, demo_url)
    result = run_cli("--config", str(config), "crawl", "no-such-source", env={"YUQING_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 2
    assert "no-such-source" in result.stderr


def test_sources_check_prints_fields_and_stores_nothing(tmp_path: Path, demo_url: str) -> None:
    config = _config(tmp_path, demo_url)
    data = tmp_path / "data"
    env = {**UNNICED, "YUQING_DATA_DIR": str(data)}
    result = run_cli("--config", str(config), "sources", "check", "demo-12345", env=env, timeout=CRAWL_WAIT)
    assert result.returncode == 0, result.stderr
    assert '"title"' in result.stdout
    assert "published_at" in result.stdout
    store = data / "items.sqlite3"
    if store.exists():
        with sqlite3.connect(store) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "items" in tables:
                assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 0


def test_the_crawl_log_masks_personal_data(tmp_path: Path, demo_url: str) -> None:
    config = _config(tmp_path, demo_url)
    data = tmp_path / "data"
    # DEBUG makes Scrapy log every scraped record, crawled text included: the worst case for the log.
    env = {**UNNICED, "YUQING_DATA_DIR": str(data), "YUQING_LOGGING__LEVEL": "DEBUG"}
    result = run_cli("--config", str(config), "crawl", "demo-12345", env=env, timeout=CRAWL_WAIT)
    assert result.returncode == 0, result.stderr
    log = (data / "logs" / "crawl.log").read_text(encoding="utf-8")
    assert "Scraped from" in log  # Scrapy's own records reach the log (through loguru)
    assert re.search(r"1[3-9]\d\*{4}\d{4}", log), "the demo's phone numbers should appear, masked"
    leaked = re.findall(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])", log)
    assert leaked == []
    # An operator reads this log: a deprecation warning from our own settings at every crawl is noise.
    assert "ScrapyDeprecationWarning" not in log
