"""Repost detection's candidate lookup on Elasticsearch: one search per crawl batch, the per-key answers."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from service.settings import ElasticsearchSettings
from service.store.elasticsearch import ElasticsearchStore
from service.store.es_fresh import FreshWrites
from tests.store.builders import make_item

pytestmark = pytest.mark.elasticsearch


@pytest.fixture
def es_store(shared_es_settings: ElasticsearchSettings, frozen_clock) -> Iterator[ElasticsearchStore]:
    store = ElasticsearchStore(shared_es_settings)
    store.init()
    yield store
    store.close()


def _searches(client: Elasticsearch, store: ElasticsearchStore) -> int:
    """Searches the node ran on the items index so far (each query of an msearch counts)."""
    stats = client.indices.stats(index=store.alias, metric="search")
    return int(stats["_all"]["primaries"]["search"]["query_total"])


def _stored(store: ElasticsearchStore, count: int, band_range: int) -> list:
    rng = random.Random(7)
    items = [make_item(n, lsh=rng.sample(range(band_range), 6)) for n in range(count)]
    store.upsert(items)
    store.count()  # refreshed: the lookups below need no refresh of their own
    return items


def test_a_crawl_batch_asks_the_node_one_search(es_store: ElasticsearchStore, es_admin: Elasticsearch) -> None:
    """A search per crawled item made the node spend 14 ms of CPU per item, more than indexing it."""
    items = _stored(es_store, 40, band_range=400)
    batch = {f"new-{n}": random.Random(n).sample(range(400), 6) for n in range(30)}
    before = _searches(es_admin, es_store)
    found = es_store.lsh_candidates(batch, limit=50)
    assert _searches(es_admin, es_store) - before == 1
    assert found  # the batch shares bands with the stored items
    by_id = {i.id: i for i in items}
    for key, candidates in found.items():
        shared = [len(set(batch[key]) & set(by_id[c.id].lsh)) for c in candidates]
        assert min(shared) >= 1
        assert shared == sorted(shared, reverse=True)


def test_the_batch_lookup_answers_as_one_scored_query_per_key(es_store: ElasticsearchStore) -> None:
    # Few distinct bands: many items share several, so ranking and ties (earliest stored first) matter.
    _stored(es_store, 120, band_range=40)
    rng = random.Random(11)
    batch = {f"new-{n}": rng.sample(range(40), 5) for n in range(25)}
    combined = es_store._combined(list(batch), batch, limit=6)
    assert combined is not None
    per_key = es_store._per_key(list(batch), batch, limit=6)
    assert {k: [i.id for i in v] for k, v in combined.items()} == {k: [i.id for i in v] for k, v in per_key.items()}
    assert all(len(v) == 6 for v in combined.values())
    # Whole items, as the exact comparison needs them; not the masked copies or search keys.
    first = next(iter(combined.values()))[0]
    assert first.title.startswith("工单")
    assert first.content.startswith("市民反映")


def test_bands_shared_by_more_items_than_the_answers_hold_still_rank_per_key(
    es_store: ElasticsearchStore, es_admin: Elasticsearch
) -> None:
    items = _stored(es_store, 60, band_range=8)  # every stored item shares bands with every key
    batch = {"x": [0, 1, 2], "y": [5, 6]}
    assert es_store._combined(list(batch), batch, limit=3) is None  # 6 answers cannot hold 60 items
    before = _searches(es_admin, es_store)
    found = es_store.lsh_candidates(batch, limit=3)
    # The combined search, then one scored query per key.
    assert _searches(es_admin, es_store) - before == 3
    shared = {i.id: len({0, 1, 2} & set(i.lsh)) for i in items}
    assert [shared[i.id] for i in found["x"]] == sorted(shared.values(), reverse=True)[:3]


@pytest.fixture
def refreshes(es_store: ElasticsearchStore, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The refreshes the store asks for from now on."""
    seen: list[object] = []
    real = es_store._es.indices.refresh
    monkeypatch.setattr(es_store._es.indices, "refresh", lambda **kw: seen.append(kw) or real(**kw))
    return seen


def test_a_crawl_batch_finds_the_batches_stored_before_it_without_a_refresh(
    es_store: ElasticsearchStore, es_admin: Elasticsearch, refreshes: list[object]
) -> None:
    """The store refreshed before 9 of 10 batch lookups of a crawl: a small segment per batch for the node."""
    _stored(es_store, 5, band_range=400)
    refreshes.clear()
    batches = [[make_item(100 + 10 * b + n, lsh=[1000 + n, 2000 + b]) for n in range(10)] for b in range(3)]
    for number, batch in enumerate(batches):
        found = es_store.lsh_candidates({i.id: i.lsh for i in batch})
        # Every earlier batch's item n shares band 1000 + n with this batch's item n: found, each once.
        for n, item in enumerate(batch):
            assert [c.id for c in found.get(item.id, [])] == [b[n].id for b in batches[:number]]
        es_store.upsert(batch)
        if number == 1:
            # Another reader's refresh makes some of them searchable: still each document once.
            es_admin.indices.refresh(index=es_store.alias)
    assert refreshes == []


def test_an_item_changed_by_this_process_is_found_as_it_is_now(
    es_store: ElasticsearchStore, refreshes: list[object]
) -> None:
    _stored(es_store, 1, band_range=400)
    old = make_item(50, lsh=[1, 2, 3])
    es_store.upsert([old])
    es_store.count()  # searchable in its first version
    changed = make_item(50, lsh=[7, 8], title="工单五十（更正）")
    es_store.upsert([changed])
    refreshes.clear()
    # The index still shows the first version until a refresh; the answer is the one after it.
    assert es_store.lsh_candidates({"x": [1, 2]}) == {}
    assert [i.title for i in es_store.lsh_candidates({"x": [7]})["x"]] == ["工单五十（更正）"]
    assert refreshes == []


def test_more_writes_than_the_store_holds_are_made_searchable_by_one_refresh(
    es_store: ElasticsearchStore, refreshes: list[object]
) -> None:
    es_store._fresh = FreshWrites(cap=3)
    items = [make_item(n, lsh=[500]) for n in range(5)]
    es_store.upsert(items)
    assert [i.id for i in es_store.lsh_candidates({"x": [500]})["x"]] == [i.id for i in items]
    assert len(refreshes) == 1


@pytest.fixture
def mgets(es_store: ElasticsearchStore, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ids of each mget the store makes from now on."""
    seen: list[list[str]] = []
    real = es_store._es.mget
    monkeypatch.setattr(es_store._es, "mget", lambda **kw: seen.append(list(kw["ids"])) or real(**kw))
    return seen


def test_new_items_of_a_crawl_batch_are_written_without_a_read_first(
    es_store: ElasticsearchStore, mgets: list[list[str]]
) -> None:
    """An mget before every crawl batch's bulk write only ever answered "not stored" for new items."""
    stored = make_item(1, lsh=[1, 2])
    es_store.upsert([stored])
    mgets.clear()
    again = make_item(1, lsh=[1, 2])
    batch = [make_item(n, lsh=[n * 10]) for n in range(2, 5)]
    found = es_store.lsh_candidates({i.id: i.lsh for i in [again, *batch]})
    assert [i.id for i in found[again.id]] == [stored.id]
    result = es_store.upsert([again, *batch])
    assert sorted(result.new) == sorted(i.id for i in batch)
    assert result.unchanged == [stored.id]
    assert mgets == [[stored.id]]  # only the item found among its own candidates is read
    assert es_store.count() == 4


def test_an_item_changed_beyond_its_bands_is_updated_not_created_twice(
    es_store: ElasticsearchStore, mgets: list[list[str]]
) -> None:
    stored = make_item(1, lsh=[1, 2])
    es_store.upsert([stored])
    es_store.set_event([stored.id], "event-1")
    mgets.clear()
    rewritten = make_item(1, lsh=[7], title="工单一（全文改写）")
    # Not among its own candidates (no band in common), so the upsert tries to create it: the cluster
    # refuses, and it is read and written as the update it is.
    assert es_store.lsh_candidates({rewritten.id: rewritten.lsh}) == {}
    result = es_store.upsert([rewritten])
    assert result.updated == [stored.id]
    assert not result.new
    assert not result.dead_lettered
    assert mgets == [[stored.id]]
    now = es_store.get(stored.id)
    assert now is not None
    assert now.title == "工单一（全文改写）"
    assert now.event_id == "event-1"
    assert es_store.count() == 1


def test_a_lookup_reads_only_the_documents_this_process_does_not_hold(
    es_store: ElasticsearchStore, shared_es_settings: ElasticsearchSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every candidate's document cost the node more per crawl batch than finding them."""
    items = [make_item(n, lsh=[1, 100 + n]) for n in range(6)]
    es_store.upsert(items)
    es_store.count()  # refreshed: the index shows them
    reads: list[list[str]] = []
    real = ElasticsearchStore._read_held
    monkeypatch.setattr(ElasticsearchStore, "_read_held", lambda self, ids: reads.append(ids) or real(self, ids))
    mine = es_store.lsh_candidates({"x": [1, 103]}, limit=10)
    assert reads == []  # all written by this process, in the versions the index shows
    # Another process (a fresh store object) reads them once, then holds them too; the answers agree.
    other = ElasticsearchStore(shared_es_settings)
    try:
        theirs = other.lsh_candidates({"x": [1, 103]}, limit=10)
        assert len(reads) == 1
        assert sorted(reads[0]) == sorted(i.id for i in items)
        assert other.lsh_candidates({"x": [1, 103]}, limit=10) == theirs
        assert len(reads) == 1
    finally:
        other.close()
    assert (
        [i.id for i in theirs["x"]]
        == [i.id for i in mine["x"]]
        == [items[3].id, *(i.id for i in items if i is not items[3])]
    )
