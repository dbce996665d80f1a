"""Elasticsearch unreachable: items spool into the shared database and are replayed when it returns, by any
process on any machine, nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

from service.db import Database
from service.store.base import ItemQuery
from service.store.elasticsearch import ElasticsearchStore
from service.store.spool import SpoolingStore
from tests.db_fixtures import migrated_sqlite
from tests.servers.tcp_proxy import TcpProxy
from tests.store.builders import make_item

pytestmark = pytest.mark.elasticsearch


@pytest.fixture
def ledger(tmp_path: Path) -> Database:
    db = Database(migrated_sqlite(tmp_path / "ledger.db"))
    yield db
    db.dispose()


@pytest.fixture
def proxy(es_server) -> TcpProxy:
    parts = urlsplit(es_server.url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 9200)
    proxy.start()
    yield proxy
    proxy.stop()


def test_outage_spools_and_replays_exactly_once(es_settings, proxy: TcpProxy, ledger: Database) -> None:
    settings = es_settings.model_copy(update={"hosts": [proxy.url], "request_timeout": 20.0})
    store = SpoolingStore(ElasticsearchStore(settings), ledger)
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


def test_a_spool_left_by_a_dead_machine_is_replayed_by_another(
    es_settings, proxy: TcpProxy, database_url: str, tmp_path: Path
) -> None:
    settings = es_settings.model_copy(update={"hosts": [proxy.url], "request_timeout": 20.0})
    ledger = Database(database_url)
    ledger.migrate()
    # Machine A spools during the outage, then is gone for good (its data dir with it).
    machine_a = SpoolingStore(ElasticsearchStore(settings), ledger, legacy_dir=tmp_path / "a" / "spool")
    machine_a.init()
    proxy.stop()
    assert machine_a.upsert([make_item(n) for n in range(25)]).spooled
    machine_a.close()
    proxy.start()
    # Machine B (its own data dir, the same database) sees the spool and replays it, once.
    machine_b = SpoolingStore(ElasticsearchStore(settings), Database(database_url), legacy_dir=tmp_path / "b" / "spool")
    assert machine_b.health()["spooled"] == 25
    assert machine_b.replay() == 25
    assert machine_b.replay() == 0
    assert machine_b.pending() == 0
    assert machine_b.count(ItemQuery()) == 25
    machine_b.close()
    machine_b.db.dispose()
    ledger.dispose()


def test_a_disk_spool_of_an_earlier_version_is_replayed(
    es_settings, proxy: TcpProxy, ledger: Database, tmp_path: Path
) -> None:
    settings = es_settings.model_copy(update={"hosts": [proxy.url], "request_timeout": 20.0})
    legacy = tmp_path / "spool"
    legacy.mkdir()
    (legacy / "00000000000000000001-1.jsonl").write_text(
        "".join(make_item(n).model_dump_json() + "\n" for n in range(7)), encoding="utf-8"
    )
    store = SpoolingStore(ElasticsearchStore(settings), ledger, legacy_dir=legacy)
    store.init()
    assert store.pending() == 7
    assert store.replay() == 7
    assert not list(legacy.glob("*.jsonl"))
    assert store.count(ItemQuery()) == 7
    store.close()


def test_items_written_before_the_database_is_migrated_are_stored(shared_es_settings, tmp_path: Path) -> None:
    """Found running the app-level tests on Elasticsearch: every write first looked for spooled rows, and on a
    database not yet migrated (a crawl on a fresh installation) failed with "no such table: item_spool"."""
    fresh = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    store = SpoolingStore(ElasticsearchStore(shared_es_settings), fresh)
    try:
        store.init()
        assert len(store.upsert([make_item(n) for n in range(3)]).new) == 3
        assert store.pending() == 0
        assert store.health()["spooled"] == 0
    finally:
        store.close()
        fresh.dispose()


def test_a_cluster_that_keeps_refusing_writes_spools_them_instead_of_dead_lettering(
    es_settings, es_server, ledger: Database
) -> None:
    """429 for longer than the retries last (here the flood-stage block of a full disk; under load the write
    queue or the memory breaker) is a cluster that cannot take writes now, not documents it can never
    accept: they wait in the spool and are stored once it takes writes again, none in the dead-letter index."""
    settings = es_settings.model_copy(update={"bulk_max_retries": 2})
    store = SpoolingStore(ElasticsearchStore(settings), ledger)
    store.init()
    admin = Elasticsearch(es_server.url, basic_auth=(es_server.username, es_server.password))
    blocked = {"index.blocks.read_only_allow_delete": True}
    try:
        store.upsert([make_item(n) for n in range(5)])
        admin.indices.put_settings(index=store.alias, settings=blocked)
        during = store.upsert([make_item(n) for n in range(5, 20)])
        assert during.spooled == [make_item(n).id for n in range(5, 20)]
        assert during.dead_lettered == []
        assert store.pending() == 15
        admin.indices.put_settings(index=store.alias, settings={"index.blocks.read_only_allow_delete": None})
        assert store.replay() == 15
        assert store.count(ItemQuery()) == 20
        assert store.dead_letters() == []
    finally:
        admin.options(ignore_status=404).indices.put_settings(
            index=f"{settings.index_prefix}-*", settings={"index.blocks.read_only_allow_delete": None}
        )
        admin.close()
        store.close()


def test_a_crawl_write_shown_to_lookups_is_spooled_and_withdrawn_when_the_cluster_goes(
    es_settings, proxy: TcpProxy, ledger: Database
) -> None:
    """A crawl's write of new items shows its documents to the next lookups before it is sent (crawlers/pipelines.py);
    when the cluster is gone by then, the items are spooled as by any write and lookups no longer see them."""
    settings = es_settings.model_copy(update={"hosts": [proxy.url], "request_timeout": 20.0})
    store = SpoolingStore(ElasticsearchStore(settings), ledger)
    store.init()
    items = [make_item(n, lsh=[n, 1000 + n]) for n in range(5)]
    probe = {"probe": [0, 1, 2, 3, 4]}
    assert store.lsh_candidates({i.id: i.lsh for i in items}) == {}  # new: the write may be staged
    staged = store.stage_upsert(items)
    assert staged is not None
    assert {i.id for i in store.lsh_candidates(probe)["probe"]} == {i.id for i in items}

    proxy.stop()
    result = staged.send()
    assert result.spooled == [i.id for i in items]
    assert not staged.exact  # the crawl looks its next batch up again
    assert store.pending() == 5

    proxy.start()
    assert store.lsh_candidates(probe) == {}  # spooled, not stored: no longer shown
    # The next crawl write replays the spool first: lookups made beside it could not see those items.
    more = [make_item(n, lsh=[n, 1000 + n]) for n in range(5, 8)]
    assert store.lsh_candidates({i.id: i.lsh for i in more}) == {}
    staged = store.stage_upsert(more)
    assert staged is not None
    assert len(staged.send().new) == 3
    assert not staged.exact
    assert store.pending() == 0
    assert {i.id for i in store.lsh_candidates(probe)["probe"]} == {i.id for i in items}
    assert store.count(ItemQuery()) == 8
    store.close()
