"""A slow crawl writes its items within ``crawl.batch_seconds``, not when its batch is full or the crawl ends.

A 12345 site crawled politely (a delay per page) fills a batch of 100 in minutes; until then nothing it found
was stored, matched or alerted. The site here answers three detail pages and then holds the fourth until the
test has looked: the first three must be in the store while the crawl is still under way.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from crawlers.runner import crawl_sources
from tests.crawlers.conftest import make_settings
from tests.crawlers.test_crawl_stop import ENTRIES, HANGING, SlowSite, _stored, _write_config


def test_a_slow_crawl_stores_its_first_items_before_its_batch_is_full(tmp_path: Path) -> None:
    slow = SlowSite()
    config = tmp_path / "config"
    _write_config(config, slow.site.base, delay=0.2)
    yaml = (config / "sources.yaml").read_text(encoding="utf-8")
    assert "  batch_size: 100\n" in yaml
    settings = make_settings(tmp_path, yaml.replace("  batch_size: 100\n", "  batch_size: 100\n  batch_seconds: 1\n"))
    results: dict = {}
    crawl = threading.Thread(target=lambda: results.update(crawl_sources(settings, timeout=280)), daemon=True)
    crawl.start()
    try:
        assert slow.hanging.wait(240), "the crawl never reached the held page"
        # The crawl cannot end while the page is held: whatever is stored now was written by the timer.
        deadline = time.monotonic() + 60
        stored = _stored(tmp_path / "data")
        while len(stored) < HANGING - 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            stored = _stored(tmp_path / "data")
        assert crawl.is_alive()
        assert len(stored) >= HANGING - 1, stored
    finally:
        slow.release.set()
        crawl.join(280)
        slow.close()
    # The rest arrives as before, each item once.
    assert results["slow-12345"]["new"] == ENTRIES
    after = _stored(tmp_path / "data")
    assert sorted(after) == sorted(f"GD{n:04d}" for n in range(1, ENTRIES + 1))
