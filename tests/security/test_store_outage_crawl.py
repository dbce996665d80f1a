"""Elasticsearch goes away in the middle of a real crawl and comes back: every item still ends up stored once.

The crawl runs as ``yuqing crawl`` runs it (a child process through crawlers.runner) against the bundled
demo site (24 work orders, 12 letters, 8 news articles). A proxy in front of the real Elasticsearch is
switched off shortly after the first page is fetched and on again a few seconds later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crawlers.demo import demo_sources_yaml, serve_demo
from crawlers.runner import crawl_sources
from service.settings import ElasticsearchSettings, Settings
from service.store import Store, make_store
from service.store.base import ItemQuery
from tests.crawlers.conftest import make_settings
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.elasticsearch

DEMO_TOTAL = 24 + 12 + 8
# Slow enough (~50 requests x 0.15 s on one host) that the outage falls inside the crawl; small batches
# so that writes happen while Elasticsearch is away, not only at the end.
SLOW_CRAWL = ("download_delay: 0\n", "download_delay: 0.15\n  batch_size: 5\n")


@pytest.fixture
def proxy(es_server) -> Iterator[TcpProxy]:
    parts = urlsplit(es_server.url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 9200)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def demo() -> Iterator[tuple[str, threading.Event]]:
    """The demo site and an event set by its first request (the crawl process is up and crawling)."""
    server, base = serve_demo(0, live_interval=0)
    first_request = threading.Event()
    handler = server.RequestHandlerClass

    class Watching(handler):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            first_request.set()
            super().do_GET()

    server.RequestHandlerClass = Watching
    yield base, first_request
    server.shutdown()
    server.server_close()


def _settled_count(store: Store, wait: float = 60.0) -> int:
    """The item count once the crawl process's last writes are searchable (Elasticsearch refreshes ~1/s)."""
    deadline = time.monotonic() + wait
    count = store.count(ItemQuery())
    while count < DEMO_TOTAL and time.monotonic() < deadline:
        time.sleep(0.5)
        count = store.count(ItemQuery())
    return count


def _what_happened(tmp: Path, counts: dict, store: Store) -> str:
    """The crawl's counts, dead letters and the warnings of its log: what a failure needs to be understood."""
    log = tmp / "data" / "logs" / "crawl.log"
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    warnings = [line[:300] for line in lines if " WARNING " in line or " ERROR " in line][-30:]
    letters = [(d.item_id, d.reason[:200]) for d in store.dead_letters()]
    return f"counts={counts}\ndead letters={letters}\ncrawl log:\n" + "\n".join(warnings)


def _settings(tmp: Path, base: str, es: ElasticsearchSettings, slow: bool) -> Settings:
    yaml = demo_sources_yaml(base)
    if slow:
        yaml = yaml.replace(*SLOW_CRAWL)
    settings = make_settings(tmp, yaml)
    settings.store.backend = "elasticsearch"
    settings.store.elasticsearch = es
    return settings


def test_outage_mid_crawl_loses_and_doubles_nothing(
    tmp_path: Path, es_settings: ElasticsearchSettings, proxy: TcpProxy, demo: tuple[str, threading.Event]
) -> None:
    base, first_request = demo
    es = es_settings.model_copy(update={"hosts": [proxy.url], "request_timeout": 5.0})
    assert SLOW_CRAWL[0] in demo_sources_yaml(base)
    outage: dict[str, float] = {}

    def flap() -> None:
        if not first_request.wait(120):
            return
        time.sleep(0.5)
        proxy.stop()
        outage["down"] = time.monotonic()
        time.sleep(4)
        proxy.start()
        outage["up"] = time.monotonic()

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    counts = crawl_sources(_settings(tmp_path, base, es, slow=True), timeout=180)
    finished = time.monotonic()
    flapper.join(10)
    assert "up" in outage, "the proxy never went down"
    assert outage["up"] < finished, "the crawl ended before Elasticsearch came back: the outage missed it"
    assert set(counts) == {"demo-12345", "demo-mailbox", "demo-news"}

    store = make_store(_settings(tmp_path, base, es, slow=False))
    try:
        store.replay()  # whatever the crawl spooled while the cluster was away
        assert _settled_count(store) == DEMO_TOTAL, _what_happened(tmp_path, counts, store)
        # The crawl's summary accounts for every item: written at once, or spooled while the cluster was away.
        accounted = sum(c["new"] + c.get("spooled", 0) for c in counts.values())
        assert accounted == DEMO_TOTAL, _what_happened(tmp_path, counts, store)
        ids = [i.id for i in store.search(ItemQuery(size=200)).results]
        assert len(ids) == len(set(ids)) == DEMO_TOTAL
    finally:
        store.close()

    again = crawl_sources(_settings(tmp_path, base, es, slow=False), timeout=180)
    assert {sid: c["new"] for sid, c in again.items()} == dict.fromkeys(counts, 0)
    store = make_store(_settings(tmp_path, base, es, slow=False))
    try:
        assert _settled_count(store) == DEMO_TOTAL
    finally:
        store.close()
