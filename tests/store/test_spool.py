"""Elasticsearch unreachable: items spool to disk and are replayed when it returns, nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.store.base import ItemQuery
from service.store.elasticsearch import ElasticsearchStore
from service.store.spool import SpoolingStore
from tests.servers.tcp_proxy import TcpProxy
from tests.store.builders import make_item

pytestmark = pytest.mark.elasticsearch


@pytest.fixture
def proxy(es_server) -> TcpProxy:
    parts = urlsplit(es_server.url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 9200)
    proxy.start()
    yield proxy
    proxy.stop()


def test_outage_spools_and_replays_exactly_once(es_settings, proxy: TcpProxy, tmp_path: Path) -> None:
    settings = es_settings.model_copy(update={"hosts": [proxy.url], "request_timeout": 20.0})
    store = SpoolingStore(ElasticsearchStore(settings), tmp_path / "spool")
    store.init()
    first = store.upsert([make_item(n) for n in range(40)])
    assert len(first.new) == 40

    proxy.stop()
    during = store.upsert([make_item(n) for n in range(40, 100)])
    assert during.spooled == [make_item(n).id for n in range(40, 100)]
    assert store.pending() == 60
    health = store.health()
    assert health["status"] == "down"
    assert health["spooled"] == 60

    proxy.start()
    # The next write replays the spool first, in order, then writes its own batch.
    after = store.upsert([make_item(n) for n in range(100, 110)])
    assert len(after.new) == 10
    assert store.pending() == 0
    assert store.count(ItemQuery()) == 110
    # A crawl that re-sends everything after the outage adds nothing: ids are deterministic.
    again = store.upsert([make_item(n) for n in range(110)])
    assert len(again.unchanged) == 110
    assert store.count(ItemQuery()) == 110
    store.close()


def test_spool_survives_a_restart(es_settings, proxy: TcpProxy, tmp_path: Path) -> None:
    settings = es_settings.model_copy(update={"hosts": [proxy.url], "request_timeout": 20.0})
    store = SpoolingStore(ElasticsearchStore(settings), tmp_path / "spool")
    store.init()
    proxy.stop()
    store.upsert([make_item(n) for n in range(25)])
    store.close()
    proxy.start()
    # A new process (new store object) finds the spool on disk and replays it.
    reborn = SpoolingStore(ElasticsearchStore(settings), tmp_path / "spool")
    assert reborn.pending() == 25
    assert reborn.replay() == 25
    assert reborn.count(ItemQuery()) == 25
    reborn.close()
