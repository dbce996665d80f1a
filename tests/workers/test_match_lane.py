"""Matching never waits behind crawls: a worker busy crawling still matches new items at once (its matching
lane takes only the matching queue). Before, a matching run deferred after a crawl waited behind every crawl
queued before it: alert latency of minutes under a backlog (BENCHMARKS.md, Workers)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.db import Database
from service.feed.models import Alert
from service.scheduling import queue
from service.store import make_store
from tests.crawlers.site import Site
from tests.foundation.conftest import run_cli
from tests.matching.builders import item
from tests.workers.test_worker import (
    SLOW_SOURCE,
    job_rows,
    queue_config,
    settings_for,
    slow_site,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.long_running(60), pytest.mark.timeout(900)]


def test_a_worker_mid_crawl_matches_new_items_without_waiting_for_the_crawl(
    tmp_path: Path, postgres_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site()
    # The detail pages answer only after 20 minutes, and the source's download timeout is 10 minutes: the crawl
    # holds the worker's only crawl slot for the whole test, whatever the machine's load.
    slow_site(site, first_delay=1200)
    config, env = queue_config(tmp_path, postgres_database_url)
    (config / "sources.yaml").write_text(
        SLOW_SOURCE.replace("{base}", site.base).replace("timeout: 60", "timeout: 600"), encoding="utf-8"
    )
    assert run_cli("--config", str(config), "init", env=env).returncode == 0
    settings = settings_for(config, env, monkeypatch)
    libpq = postgres_database_url.replace("postgresql+psycopg://", "postgresql://")
    db = Database(postgres_database_url)
    worker = start_worker(config, env, tmp_path / "worker.log")
    try:
        crawl = queue.defer(settings, "crawl:slow-12345", "crawlers.scheduled:crawl_one", {"source_id": "slow-12345"})
        assert crawl is not None
        wait_for(lambda: site.hits.get("/detail_1.html", 0) > 0, 240, "the crawl is waiting for a detail page")
        # Items another worker (or the API) stored meanwhile; the scheduler's trigger asks for a matching run.
        store = make_store(settings)
        try:
            store.upsert([item(n, text).with_fingerprint() for n, text in ((1, "化工厂夜间异味扰民"), (2, "公园开放"))])
        finally:
            store.close()
        assert queue.defer_match(settings) is not None

        def alerts() -> int:
            with db.session() as session:
                return session.scalar(select(func.count()).select_from(Alert)) or 0

        wait_for(lambda: alerts() == 1, 240, "the busy worker matched the new items")
        assert job_rows(libpq)[crawl] == "doing"  # matched while the crawl still held the worker
    finally:
        # SIGKILL: a graceful stop would wait 10 minutes for the crawl; the crawl process dies with the worker.
        worker.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=60)
        queue.close()
        db.dispose()
        site.close()
