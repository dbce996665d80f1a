"""Fixtures of the crawler tests: a local site with messy government pages and a config dir for it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings, load_settings
from tests.crawlers.site import Site
from tests.db_fixtures import migrated_sqlite

# Tests must not wait on politeness delays: no AutoThrottle, no delay, one retry. No test here waits on a
# timeout; the local sites answer at once, yet 5 s expired at load 20 on 2 cores (a 500 seen as a timeout).
FAST_CRAWL = """crawl:
  autothrottle: false
  download_delay: 0
  timeout: 30
  retries: 1
  concurrency_per_domain: 8
"""


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium_present() -> None:
    """Debian's Chromium for render: browser sources; missing: skip locally, fail under CI=true."""
    from tests.servers.fixtures import in_ci

    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if in_ci():
            pytest.fail(f"Chromium not installed at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def other_origin() -> Iterator[Site]:
    """A second server on 127.0.0.1 (another port: another origin) that trusted sites link and redirect to."""
    server = Site()
    yield server
    server.close()


def make_settings(tmp: Path, sources_yaml: str) -> Settings:
    """Settings with a config dir holding ``sources_yaml`` and a data dir, both under ``tmp``."""
    config = tmp / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "sources.yaml").write_text(sources_yaml, encoding="utf-8")
    settings = load_settings(config, data_dir=str(tmp / "data"))
    # The crawl writes source health into the ledger database, as after `yuqing init`.
    migrated_sqlite(tmp / "data" / "yuqing.db")
    # Crawls run below the server's CPU priority (nice 10; test_scheduled_crawl checks it). Here the test
    # waits on the crawl, and on a loaded 2-core CI machine a niced crawl gets a sliver of CPU next to the
    # other test processes: a 5 s crawl took minutes and its 1 s timers fired late.
    settings.scheduler.crawl_niceness = 0
    return settings
