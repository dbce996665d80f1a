"""City scale, proven here: a 3-node Elasticsearch cluster, PostgreSQL, one scheduler and 3 workers crawl a
local site of 200 sources; one worker is killed (SIGKILL) mid-crawl; every item is stored once, matched
once, and makes exactly one alert, one ticket and one notice (delivered to a local webhook).

Real processes as an operator starts them (`yuqing init`, `yuqing scheduler`, `yuqing worker` x3), all on
loopback. Slow by nature (three JVMs and 200 crawls on 2 cores: a few minutes); bounded by its deadlines.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import func, select

from alerting.models import OutboxMessage
from service.db import Database
from service.feed.models import Alert
from service.ledger.models import Ticket
from service.settings import Settings
from tests.crawlers.site import Page, Request, Site
from tests.servers.elasticsearch import ElasticsearchCluster, elasticsearch_cluster
from tests.servers.fixtures import unavailable
from tests.servers.process import ServerUnavailable
from tests.workers.test_worker import queue_config, settings_for, start_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.elasticsearch, pytest.mark.timeout(1200), pytest.mark.long_running(390)]

# 200 in CI; a developer may ask for fewer to check the mechanics quickly (YUQING_CITY_SOURCES=24).
SOURCES = int(os.environ.get("YUQING_CITY_SOURCES", "200"))
# Every other source publishes one order a rule matches: 100 alerts, 100 tickets, 100 notices.
MATCHING = SOURCES // 2
WORDS = [a + b for a in "山水林田湖草沙城乡路桥街巷楼院门窗灯" for b in "东西南北前后左右上下里外新旧高低"]


def order_text(source: int, n: int) -> str:
    """A distinct text per order (no two are reposts of each other, so every hit is its own event)."""
    rng = random.Random(source * 10 + n)
    return "，".join(rng.sample(WORDS, 40))


def build_site(site: Site) -> None:
    """200 sources, each a list of two orders; detail pages answer after a moment, like a real server."""
    for s in range(SOURCES):
        titles = [f"{'化工厂夜间异味' if s % 2 == 0 else '路面破损'}（第{s}号来源）", f"路灯不亮（第{s}号来源）"]
        links = "".join(f'<li><a href="/s{s}/d{n}.html">{t}</a></li>' for n, t in enumerate(titles))
        site.html(f"/s{s}/list.html", f"<html><body><ul class='orders'>{links}</ul></body></html>")
        for n, title in enumerate(titles):
            body = (
                f"<html><body><span class='no'>S{s}-{n}</span><h1>{title}</h1>"
                f"<div class='content'>{title}。{order_text(s, n)}</div></body></html>"
            ).encode()
            site.set(f"/s{s}/d{n}.html", Page(200, body, "text/html; charset=utf-8", delay=0.2))


def sources_yaml(base: str) -> str:
    head = (
        "crawl:\n  autothrottle: false\n  download_delay: 0\n  timeout: 30\n  retries: 1\n"
        "  concurrency_per_domain: 8\nsources:\n"
    )
    entries = [
        f"""  - id: city-{s}
    name: 第{s}号来源
    channel: hotline
    type: html
    start_urls: ["{base}/s{s}/list.html"]
    interval: 1d
    list:
      items: "ul.orders > li"
      url: "a::attr(href)"
    fields:
      external_id: "span.no"
      title: "h1::text"
      content: "div.content"
"""
        for s in range(SOURCES)
    ]
    return head + "".join(entries)


class Webhook:
    """A local webhook receiver: every notice that arrives, as sent."""

    def __init__(self, site: Site) -> None:
        self.received: list[dict] = []
        self._lock = threading.Lock()
        site.handle("/hook", self._receive)
        self.url = f"{site.base}/hook"

    def _receive(self, request: Request) -> Page:
        with self._lock:
            self.received.append(json.loads(request.body))
        return Page(200, b"ok", "text/plain")

    def alerts(self) -> list[dict]:
        with self._lock:
            return [m for m in self.received if m["kind"] == "alert"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[ElasticsearchCluster]:
    try:
        with elasticsearch_cluster(nodes=3) as running:
            yield running
    except ServerUnavailable as exc:
        unavailable(f"Elasticsearch cluster: {exc}")


class Probe:
    """What the test watches while it waits, on one kept connection each (no connection per poll).

    Polls never force a refresh of the index (a refresh of six shard copies several times a second is
    load the product never sees); the cluster's own 1 s refresh makes writes visible, and the final
    counts refresh once.
    """

    def __init__(self, cluster: ElasticsearchCluster, prefix: str, libpq: str) -> None:
        self.cluster = cluster
        self.index = f"{prefix}-items"
        self.http = httpx.Client(auth=(cluster.username, cluster.password), timeout=30)
        self.pg = psycopg.connect(libpq, autocommit=True)

    def stored(self) -> int:
        answer = self.http.get(f"{self.cluster.urls[2]}/{self.index}/_count")
        return 0 if answer.status_code == 404 else answer.json()["count"]

    def es_count(self) -> tuple[int, int]:
        """Items in the cluster (refreshed), and how many distinct external ids among them."""
        self.http.post(f"{self.cluster.urls[1]}/{self.index}/_refresh")
        body = {"size": 0, "track_total_hits": True, "aggs": {"ids": {"cardinality": {"field": "external_id"}}}}
        answer = self.http.post(f"{self.cluster.urls[2]}/{self.index}/_search", json=body)
        if answer.status_code == 404:
            return 0, 0
        data = answer.json()
        return data["hits"]["total"]["value"], data["aggregations"]["ids"]["value"]

    def crawl_jobs(self) -> dict[str, int]:
        """Crawl jobs in the queue by status (successful ones are deleted by the workers)."""
        rows = self.pg.execute(
            "SELECT status, count(*) FROM procrastinate_jobs WHERE args->>'func' = %s GROUP BY status",
            ("crawlers.scheduled:crawl_one",),
        ).fetchall()
        return {str(status): int(n) for status, n in rows}

    def close(self) -> None:
        self.http.close()
        self.pg.close()


def test_three_workers_on_a_cluster_crawl_200_sources_exactly_once_with_one_killed(
    tmp_path: Path, postgres_database_url: str, cluster: ElasticsearchCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site()
    build_site(site)
    hook = Webhook(site)
    prefix = "city"
    hosts = json.dumps(cluster.urls)
    config, env = queue_config(
        tmp_path,
        postgres_database_url,
        extra=(
            f"store:\n  backend: elasticsearch\n  elasticsearch:\n    hosts: {hosts}\n"
            f"    username: {cluster.username}\n    password: {cluster.password}\n    index_prefix: {prefix}\n"
            "    number_of_shards: 3\n    number_of_replicas: 1\n"
            # Creating the index on three nodes took more than the default 10 s at load 25-30 on 2 cores.
            "    request_timeout: 60\n"
            "alerts:\n  sweep_seconds: 5\n"
            # (queue_config runs the crawls at the server's priority: they are the test's workload.)
            f"notifications:\n  delivery_interval_seconds: 2\n  channels:\n    hook:\n      type: webhook\n"
            f"      url: {hook.url}\n      secret: city-scale-test-secret\n"
            "  routes:\n    - kinds: [alert]\n      channels: [hook]\n"
        ),
    )
    (config / "sources.yaml").write_text(sources_yaml(site.base), encoding="utf-8")
    settings: Settings = settings_for(config, env, monkeypatch)
    assert settings.store.elasticsearch.hosts == cluster.urls
    init = subprocess.run(
        [sys.executable, "-m", "service.cli", "--config", str(config), "init"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    libpq = postgres_database_url.replace("postgresql+psycopg://", "postgresql://")
    db = Database(postgres_database_url)
    scheduler_log = tmp_path / "scheduler.log"
    with open(scheduler_log, "wb") as out:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "--config", str(config), "scheduler"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    workers = [start_worker(config, env, tmp_path / f"worker{n}.log") for n in range(3)]

    probe = Probe(cluster, prefix, libpq)

    def count(model: type) -> int:
        with db.session() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    try:
        # Mid-crawl: every worker holds a crawl and a good part of the sources is already stored.
        wait_for(
            lambda: probe.crawl_jobs().get("doing") == 3 and probe.stored() >= SOURCES // 3, 600, "crawls under way"
        )
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        stored_at_kill = probe.es_count()[0]
        assert stored_at_kill < 2 * SOURCES

        def finished() -> bool:
            # Cheapest first: the webhook is in this process, the queue one query, the cluster last.
            if len(hook.alerts()) < MATCHING:
                return False
            jobs = probe.crawl_jobs()
            return jobs.get("todo", 0) + jobs.get("doing", 0) == 0 and probe.stored() == 2 * SOURCES

        wait_for(finished, 900, "all sources crawled, matched and notified by the surviving workers")
        time.sleep(5)  # anything duplicated would show up now: one more delivery and sweep round
        assert scheduler.poll() is None, scheduler_log.read_text()[-3000:]
        # The dead worker's crawl went back to the queue (or its waiting twin did the work).
        assert "工作进程已失联" in scheduler_log.read_text(encoding="utf-8", errors="replace")
        assert probe.es_count() == (2 * SOURCES, 2 * SOURCES)
        assert count(Alert) == MATCHING
        assert count(Ticket) == MATCHING
        with db.session() as session:
            outbox = session.execute(select(OutboxMessage).where(OutboxMessage.kind == "alert")).scalars().all()
            assert len(outbox) == MATCHING
            assert all(m.sent_at is not None for m in outbox)
        received = hook.alerts()
        assert len(received) == MATCHING
        assert len({m["dedupe_key"] for m in received}) == MATCHING
    finally:
        for proc in [*workers, scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*workers, scheduler]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
            if proc.poll() is None:
                proc.kill()
        probe.close()
        db.dispose()
        site.close()
