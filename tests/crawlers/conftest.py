"""Fixtures of the crawler tests: a local site with messy government pages and a config dir for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings, load_settings
from tests.crawlers.site import Site

# Tests must not wait on politeness delays: no AutoThrottle, no delay, short timeouts, one retry.
FAST_CRAWL = """crawl:
  autothrottle: false
  download_delay: 0
  timeout: 5
  retries: 1
  concurrency_per_domain: 8
"""


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


def make_settings(tmp: Path, sources_yaml: str) -> Settings:
    """Settings with a config dir holding ``sources_yaml`` and a data dir, both under ``tmp``."""
    config = tmp / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "sources.yaml").write_text(sources_yaml, encoding="utf-8")
    return load_settings(config, data_dir=str(tmp / "data"))
