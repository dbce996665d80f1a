"""What only the Elasticsearch backend has: its index layout, bulk failure handling and an unreachable cluster."""

from __future__ import annotations

import threading

import pytest
from elasticsearch import Elasticsearch

from service.settings import ElasticsearchSettings
from service.store.base import ItemQuery, StoreUnavailable
from service.store.elasticsearch import ElasticsearchStore
from service.store.es_layout import document
from tests.servers.elasticsearch import MAX_CONTENT_MB, ElasticsearchServer
from tests.servers.process import free_port
from tests.store.builders import make_item

pytestmark = pytest.mark.elasticsearch


@pytest.fixture
def es_store(es_settings: ElasticsearchSettings, frozen_clock) -> ElasticsearchStore:
    store = ElasticsearchStore(es_settings)
    store.init()
    yield store
    store.close()


@pytest.fixture
def client(es_server: ElasticsearchServer) -> Elasticsearch:
    es = Elasticsearch(es_server.url, basic_auth=(es_server.username, es_server.password))
    yield es
    es.close()


def _deeply_nested(depth: int) -> dict:
    value: dict = {"leaf": "值"}
    for _ in range(depth):
        value = {"level": value}
    return value


def test_init_creates_template_write_alias_and_dead_letter_index(
    es_store: ElasticsearchStore, client: Elasticsearch
) -> None:
    prefix = es_store.settings.index_prefix
    templates = client.indices.get_index_template(name=f"{prefix}-items")["index_templates"]
    mappings = templates[0]["index_template"]["template"]["mappings"]["properties"]
    assert mappings["title"] == {"type": "text", "analyzer": "standard"}
    assert mappings["source"]["type"] == "keyword"
    assert mappings["lsh"]["type"] == "long"
    assert "simhash" not in mappings
    alias = client.indices.get_alias(name=f"{prefix}-items")
    assert alias[f"{prefix}-items-000001"]["aliases"][f"{prefix}-items"]["is_write_index"] is True
    assert client.indices.exists(index=f"{prefix}-deadletter")

    es_store.upsert([make_item(1)])
    es_store.init()  # idempotent, and keeps the data
    assert es_store.count() == 1


def test_refused_documents_are_dead_lettered_and_later_chunks_still_indexed(
    es_settings: ElasticsearchSettings, frozen_clock
) -> None:
    store = ElasticsearchStore(es_settings.model_copy(update={"bulk_chunk_size": 3}))
    store.init()
    items = [make_item(n) for n in range(10)]
    # Hostile input: an object deeper than the cluster's depth limit, and an unsigned band key.
    items[1] = make_item(1, extra={"raw": _deeply_nested(25)})
    items[4] = make_item(4, lsh=[1 << 63])
    result = store.upsert(items)

    refused = {items[1].id, items[4].id}
    assert {i for i, _ in result.dead_lettered} == refused
    assert sorted(result.new) == sorted(i.id for i in items if i.id not in refused)
    assert len(result.new) + len(result.dead_lettered) == len(items)
    assert store.count() == 8
    assert store.get(items[9].id) is not None  # the last chunk, after both failing ones
    letters = {d.item_id: d for d in store.dead_letters()}
    assert set(letters) == refused
    assert "HTTP 400" in letters[items[1].id].reason
    assert letters[items[4].id].document["lsh"] == [1 << 63]
    store.close()


def test_a_request_over_the_size_limit_is_split_and_only_the_giant_is_dead_lettered(
    es_store: ElasticsearchStore, es_server: ElasticsearchServer
) -> None:
    if es_server.version == "external":
        pytest.skip("needs the size limit of the server this suite starts")
    giant = make_item(3, content="字" * (MAX_CONTENT_MB * 1024 * 1024 // 3 + 1000))
    items = [make_item(n) for n in range(3)] + [giant] + [make_item(n) for n in range(4, 8)]
    result = es_store.upsert(items)
    assert [i for i, _ in result.dead_lettered] == [giant.id]
    assert "HTTP 413" in result.dead_lettered[0][1]
    assert len(result.new) == 7
    assert es_store.count() == 7
    (letter,) = es_store.dead_letters()
    assert letter.document["title"] == giant.title
    assert "characters cut" in letter.document["content"]


def test_a_retried_upsert_does_not_duplicate(es_store: ElasticsearchStore, client: Elasticsearch) -> None:
    items = [make_item(n) for n in range(5)]
    es_store.upsert(items)
    again = es_store.upsert(items + items[:2])
    assert len(again.unchanged) == 7
    assert again.new == []
    assert es_store.count() == 5
    client.indices.refresh(index=es_store.alias)
    assert client.count(index=es_store.alias)["count"] == 5


def test_rejected_bulk_documents_are_retried_until_indexed(es_settings: ElasticsearchSettings, frozen_clock) -> None:
    # The test server runs one write thread with a queue of one, so concurrent bulks are really
    # rejected with per-document 429s (es_rejected_execution_exception).
    settings = es_settings.model_copy(update={"bulk_chunk_size": 5, "bulk_max_retries": 12})
    store = ElasticsearchStore(settings)
    store.init()
    writers, per_writer = 4, 40
    results: list = [None] * writers
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            batch = [make_item(w * 1000 + n, content="内容" * 200) for n in range(per_writer)]
            results[w] = store.upsert(batch)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert store.retried > 0, "the server never rejected a write: the retry path was not exercised"
    assert sum(len(r.new) for r in results) == writers * per_writer
    assert all(r.dead_lettered == [] for r in results)
    assert store.count() == writers * per_writer
    store.close()


def test_an_unreachable_cluster_raises_store_unavailable_naming_the_host() -> None:
    port = free_port()
    store = ElasticsearchStore(ElasticsearchSettings(hosts=[f"http://127.0.0.1:{port}"], request_timeout=2))
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
        store.init()
    health = store.health()
    assert health["status"] == "down"
    assert "error" in health
    with pytest.raises(StoreUnavailable):
        store.upsert([make_item(1)])


def test_wrong_credentials_are_reported_not_mistaken_for_an_empty_store(es_server: ElasticsearchServer) -> None:
    store = ElasticsearchStore(
        ElasticsearchSettings(hosts=[es_server.url], username=es_server.username, password="not-the-password")
    )
    with pytest.raises(StoreUnavailable, match="username/password"):
        store.init()
    assert store.health()["status"] == "down"


def test_health_reports_the_cluster_status(es_store: ElasticsearchStore) -> None:
    health = es_store.health()
    assert health["status"] == "ok"
    assert health["cluster_status"] in ("green", "yellow")
    assert all("@" not in h for h in health["hosts"])


def test_hosts_with_credentials_are_not_echoed(es_server: ElasticsearchServer) -> None:
    url = es_server.url.replace("http://", f"http://{es_server.username}:{es_server.password}@")
    store = ElasticsearchStore(ElasticsearchSettings(hosts=[url]))
    assert es_server.password not in repr(store.health())


def test_a_store_that_was_never_initialised_says_so(es_settings: ElasticsearchSettings) -> None:
    store = ElasticsearchStore(es_settings)
    with pytest.raises(StoreUnavailable, match="yuqing init"):
        store.search(ItemQuery(q="化工厂"))
    with pytest.raises(StoreUnavailable, match="yuqing init"):
        store.upsert([make_item(1)])
    with pytest.raises(StoreUnavailable, match="yuqing init"):
        store.get_many(["x"])
    with pytest.raises(StoreUnavailable, match="yuqing init"):
        store.mark_matched(["x"])
    with pytest.raises(StoreUnavailable, match="yuqing init"):
        store.set_event(["x"], "evt")
    # Nothing was created behind init's back with a guessed mapping.
    store.init()
    assert store.count() == 0


def test_documents_of_an_earlier_release_get_search_keys_on_init_and_fold_like_new_ones(
    es_store: ElasticsearchStore, client: Elasticsearch
) -> None:
    # An index of a release before the masked copy and the search keys: plain documents, no _meta flag.
    index = f"{es_store.settings.index_prefix}-items-000001"
    client.indices.put_mapping(index=index, meta={})
    old = make_item(1, title="室外温度１２度", content="ＡＢＣ化工厂夜间排污，联系电话13812345678")
    doc = {k: v for k, v in document(old).items() if not k.endswith(("_masked", "_key"))}
    client.index(index=es_store.alias, id=old.id, document=doc, refresh=True)
    new = make_item(2, title="温度１２度")
    es_store.upsert([new])
    client.indices.refresh(index=es_store.alias)

    # A process started before `yuqing init` ran still finds the old document by its exact text.
    before = ElasticsearchStore(es_store.settings)
    assert [i.id for i in before.search(ItemQuery(q="１２度")).results] == [new.id, old.id]
    before.close()

    es_store.init()  # what the upgrade runs
    meta = client.indices.get_mapping(index=index)[index]["mappings"]["_meta"]
    assert meta["search_keys"] is True
    for store in (es_store, ElasticsearchStore(es_store.settings)):
        # Width and case fold for old documents as for new ones, in the masked copy too.
        assert [i.id for i in store.search(ItemQuery(q="12度")).results] == [new.id, old.id]
        assert [i.id for i in store.search(ItemQuery(q="abc化工厂")).results] == [old.id]
        assert [i.id for i in store.search(ItemQuery(q="abc化工厂", masked=True)).results] == [old.id]
        assert store.search(ItemQuery(q="13812345678", masked=True)).results == []


def test_keyset_pages_cross_items_of_the_same_time_written_in_big_chunks_each_once(
    es_settings: ElasticsearchSettings, frozen_clock
) -> None:
    # Newest first sorts on the publication time and the storage sequence only: the sequence must never
    # repeat, even for a chunk over 1,000 items or two writes while the clock stands still.
    store = ElasticsearchStore(es_settings.model_copy(update={"bulk_chunk_size": 2000}))
    store.init()
    same = make_item(0).published_at
    store.upsert([make_item(n, published_at=same) for n in range(1100)])
    store.upsert([make_item(n, published_at=same) for n in range(1100, 1105)])
    seen: list[str] = []
    page = store.search(ItemQuery(size=100))
    while True:
        seen += [i.id for i in page.results]
        if page.next is None:
            break
        page = store.search(ItemQuery(size=100, after=page.next))
    store.close()
    assert len(seen) == len(set(seen)) == 1105
    # The newest writes come first among items published at the same time.
    assert seen[:5] == [make_item(n).id for n in range(1104, 1099, -1)]


def test_a_candidate_lookup_refreshes_only_when_this_processs_writes_can_change_its_answer(
    es_store: ElasticsearchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh before every crawl batch's lookup made the node work several times harder than the writes did."""
    refreshes: list[object] = []
    real = es_store._es.indices.refresh
    monkeypatch.setattr(es_store._es.indices, "refresh", lambda **kw: refreshes.append(kw) or real(**kw))
    first = make_item(1, lsh=[11, 12])
    es_store.upsert([first, make_item(2, lsh=[21])])
    # No band of this batch was written since the last refresh: nothing to refresh for.
    assert es_store.lsh_candidates({"x": [31, 32]}) == {}
    # A band written since: the item just written is found without a refresh (this process holds it).
    assert [i.id for i in es_store.lsh_candidates({"x": [12, 40]})["x"]] == [first.id]
    assert refreshes == []
    # A candidate changed since the last refresh (another event now) comes back as it is now.
    es_store.set_event([first.id], "event-9")
    assert es_store.lsh_candidates({"x": [11]})["x"][0].event_id == "event-9"
    assert len(refreshes) == 1
