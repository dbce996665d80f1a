"""What a `yuqing worker` loads before its first job: crawl hosts, the gazetteer with the configured place names,
the tables every crawled item is signed with (one-time costs that were paid inside the first crawl, the first
matching run, and every forked crawl)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crawlers import runner
from service.context import AppContext
from service.items import places
from service.settings import load_settings
from service.worker import prepare

COMPLAINT = "翠屏湾的居民反映，楼下的烧烤摊油烟很大。"


def test_a_worker_has_its_crawl_hosts_and_the_configured_places_before_its_first_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker never configured the gazetteer: 可能是同一事件 compared places without places.txt and the
    rules' regions, and the first matching run loaded jieba's dictionary (seconds under load) before its
    alerts; its first crawl waited for a host importing Scrapy."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "places.txt").write_text("翠屏湾\n", encoding="utf-8")
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(places, "_default", places._default)  # the process's gazetteer is put back after
    monkeypatch.setattr("service.app.gc.freeze", lambda: None)  # a test process keeps collecting its garbage
    ctx = AppContext.create(load_settings(config))
    try:
        prepare(ctx, concurrency=2)
        hosts = list(runner._idle_hosts)
        assert len(hosts) == 2
        assert all(host.alive() for host in hosts)
        gazetteer = places.gazetteer()
        assert gazetteer.loaded_from == "built"  # loaded at the start, not in the first run that asks
        assert "翠屏湾" in {p.name for p in gazetteer.extract(COMPLAINT)}
    finally:
        runner.close_crawl_hosts()
        runner.use_crawl_hosts(False)
        ctx.close()


def test_a_crawl_host_builds_the_signature_tables_before_it_forks_crawls() -> None:
    """Each forked crawl built the NFKC table, the shingles' CRC tables and the MinHash permutations again for
    its first item (~0.3 s of CPU of every crawl of a small source); the host builds them once."""
    probe = (
        "from crawlers.crawl_process import _preload\n"
        "_preload()\n"
        "from service.items import minhash, nfkc\n"
        "print(nfkc._table.cache_info().currsize, minhash._crc_tables.cache_info().currsize,"
        " minhash.permutations.cache_info().currsize)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "1", "2"]
