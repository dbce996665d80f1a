"""Elasticsearch at millions of items: the index is stored in the listing order, `yuqing init` moves an older
index into that order without losing a document or a field, and a page past the window points to the cursor."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from service.settings import ElasticsearchSettings
from service.store.base import ItemQuery, PageTooDeep
from service.store.elasticsearch import ElasticsearchStore
from service.store.es_layout import index_settings, item_mappings
from service.store.es_queries import NEWEST_FIRST
from tests.servers.elasticsearch import ElasticsearchServer
from tests.store.builders import make_item

pytestmark = pytest.mark.elasticsearch


@pytest.fixture
def client(es_server: ElasticsearchServer) -> Elasticsearch:
    es = Elasticsearch(es_server.url, basic_auth=(es_server.username, es_server.password))
    yield es
    es.close()


def _sort_of(client: Elasticsearch, alias: str) -> dict[str, dict]:
    found = client.indices.get_settings(index=alias)
    return {name: body["settings"]["index"].get("sort", {}) for name, body in found.items()}


def test_a_new_items_index_is_stored_in_the_order_pages_are_listed(
    es_settings: ElasticsearchSettings, client: Elasticsearch
) -> None:
    store = ElasticsearchStore(es_settings)
    store.init()
    # The index order equals the listing sort, so a page (filtered or not) stops after its documents.
    fields = [next(iter(clause)) for clause in NEWEST_FIRST]
    orders = [next(iter(clause.values()))["order"] for clause in NEWEST_FIRST]
    (sort,) = _sort_of(client, store.alias).values()
    assert (sort["field"], sort["order"], sort["missing"]) == (fields, orders, ["_last", "_last"])
    # Newest first is the order documents lie in: the listing request reads them in that order.
    store.upsert([make_item(n) for n in range(40)])
    assert [i.id for i in store.search(ItemQuery(size=5)).results] == [make_item(n).id for n in range(39, 34, -1)]
    store.close()


def test_init_moves_an_index_of_an_earlier_release_into_the_listing_order_keeping_everything(
    es_settings: ElasticsearchSettings, client: Elasticsearch, frozen_clock
) -> None:
    # The layout of the release before index sorting: the same index and alias, no sort.
    prefix = es_settings.index_prefix
    old_index = f"{prefix}-items-000001"
    client.indices.create(
        index=old_index,
        settings=index_settings(es_settings),
        mappings={"_meta": {"search_keys": True}, **item_mappings(es_settings.analyzer)},
        aliases={f"{prefix}-items": {"is_write_index": True}},
    )
    store = ElasticsearchStore(es_settings)
    items = [make_item(n, title=f"化工厂排污{n}") for n in range(30)]
    store.upsert(items)
    store.mark_matched([items[3].id])
    store.set_event([items[4].id, items[5].id], "ev-1")
    before = [i.id for i in store.search(ItemQuery(size=50)).results]
    kept = {i.id: i for i in store.get_many([items[3].id, items[4].id])}

    store.init()  # what the upgrade runs

    sorts = _sort_of(client, store.alias)
    assert old_index not in sorts
    assert not client.indices.exists(index=old_index)
    ((moved_to, sort),) = sorts.items()
    assert moved_to == f"{prefix}-items-000002"
    assert sort["field"] == ["published_at", "stored_seq"]
    # Every document, in the same order, with what matching and event grouping wrote.
    assert [i.id for i in store.search(ItemQuery(size=50)).results] == before
    assert store.get(items[3].id).matched_at == kept[items[3].id].matched_at is not None
    assert store.get(items[4].id).event_id == "ev-1"
    assert store.search(ItemQuery(q="排污7")).total == 1
    # Writes go to the new index, and a second init has nothing left to move.
    store.upsert([make_item(99)])
    store.init()
    assert list(_sort_of(client, store.alias)) == [moved_to]
    assert store.count() == 31
    store.close()


def test_a_page_past_the_window_is_refused_with_how_to_use_the_cursor(es_settings: ElasticsearchSettings) -> None:
    store = ElasticsearchStore(es_settings)
    store.init()
    store.upsert([make_item(n) for n in range(3)])
    with pytest.raises(PageTooDeep) as refused:
        store.search(ItemQuery(page=501, size=20))
    # The answer (400 through the API) names the parameter that reaches any depth.
    assert "next" in str(refused.value)
    assert "after" in str(refused.value)
    assert "游标" in str(refused.value)
    # The last page inside the window still answers.
    assert store.search(ItemQuery(page=500, size=20)).results == []
    store.close()
