"""Elasticsearch at millions of items: text searches and deep offset pages are read from the newest part of the
index first (see service.store.es_windows), and give exactly the answers of a search over the whole index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import service.store.base
from service.settings import ElasticsearchSettings
from service.store.base import ItemQuery
from service.store.elasticsearch import ElasticsearchStore
from tests.store.builders import DAY0, make_item

pytestmark = pytest.mark.elasticsearch

CAP = 30


def _items() -> list:
    items = []
    for n in range(240):
        # Every item says 问题 (common), every third 排污 (rarer), item 7 alone 塌方; a few items are undated and
        # one is dated far in the future (crawled text is hostile: dates too).
        title = f"关于排污的投诉{n}" if n % 3 == 0 else f"工单{n}"
        extra: dict[str, Any] = {"title": title}
        if n == 7:
            extra["content"] = "道路塌方问题"
        if n % 50 == 1:
            extra["published_at"] = None
        if n == 100:
            extra["published_at"] = DAY0 + timedelta(days=3650)
        extra["department"] = f"d{n % 4}"
        items.append(make_item(n, **extra))
    return items


@pytest.fixture
def stores(
    shared_es_settings: ElasticsearchSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ElasticsearchStore, ElasticsearchStore]]:
    """(windowed, whole): the same index, counted up to CAP; the first tries windows of a few dozen documents,
    the second always asks the whole index (the behaviour before windows)."""
    windowed, whole = ElasticsearchStore(shared_es_settings), ElasticsearchStore(shared_es_settings)
    windowed.init()
    windowed.upsert(_items())
    monkeypatch.setattr(service.store.base, "COUNT_CAP", CAP)
    windowed.WINDOW_FIRST, windowed.DEEP_OFFSET = 2, 20
    whole.WINDOW_TRIES = 0
    yield windowed, whole
    windowed.close()
    whole.close()


def _asked(store: ElasticsearchStore) -> list[dict[str, Any]]:
    """Record the queries of the store's search requests (the real node still answers them)."""
    asked: list[dict[str, Any]] = []
    search = store._es.search

    def recording(**kwargs: Any) -> Any:
        asked.append(kwargs.get("query") or {})
        return search(**kwargs)

    store._es.search = recording  # type: ignore[method-assign]
    return asked


def _windowed(query: dict[str, Any]) -> bool:
    return "'range': {'published_at'" in str(query)


QUERIES = {
    "common term": ItemQuery(q="问题"),
    "common term, page 2": ItemQuery(q="问题", page=2, size=10),
    "rarer term": ItemQuery(q="排污", size=5),
    "rarer term, last full page under the cap": ItemQuery(q="排污", page=3, size=10),
    "rarer term within a filter": ItemQuery(q="排污", department="d0"),
    "a term one item holds": ItemQuery(q="塌方"),
    "a term no item holds": ItemQuery(q="排污 塌方"),
    "masked": ItemQuery(q="排污", masked=True, size=7),
    "deep offset page": ItemQuery(page=4, size=10),
    "deep offset page past the cap": ItemQuery(page=5, size=10),
    "deep offset page, term": ItemQuery(q="问题", page=20, size=10),
    "offset page past the end": ItemQuery(q="排污", page=30, size=10),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_a_page_read_from_a_window_is_the_page_of_the_whole_index(
    stores: tuple[ElasticsearchStore, ElasticsearchStore], name: str
) -> None:
    windowed, whole = stores
    query = QUERIES[name]
    got, expected = windowed.search(query), whole.search(query)
    assert [i.id for i in got.results] == [i.id for i in expected.results]
    assert (got.total, got.total_capped, got.next) == (expected.total, expected.total_capped, expected.next)


def test_common_terms_and_deep_offset_pages_ask_the_newest_documents_first(
    stores: tuple[ElasticsearchStore, ElasticsearchStore],
) -> None:
    windowed, _ = stores
    asked = _asked(windowed)
    page = windowed.search(ItemQuery(q="问题", size=10))
    # The newest ten dated items (the one dated in the future first), and more than the cap match.
    dated = sorted((i for i in _items() if i.published_at), key=lambda i: i.published_at, reverse=True)
    assert [i.id for i in page.results] == [i.id for i in dated[:10]]
    assert (page.total, page.total_capped) == (CAP, True)
    # One request, limited to recent publication times: the node never reads the term's matches of the whole
    # index (which its query cache would otherwise do for every large segment once a term is asked often).
    assert len(asked) == 1
    assert _windowed(asked[0])

    asked.clear()
    deep = windowed.search(ItemQuery(page=5, size=10))
    assert [i.id for i in deep.results] == [i.id for i in dated[40:50]]
    assert asked
    assert all(_windowed(q) for q in asked)

    # A shallow page without a term asks the whole index at once (it stops after its documents anyway).
    asked.clear()
    windowed.search(ItemQuery(size=10))
    assert len(asked) == 1
    assert not _windowed(asked[0])
    # So does a term with fewer matches than the cap, after the windows came up short.
    asked.clear()
    few = windowed.search(ItemQuery(q="塌方"))
    assert [i.id for i in few.results] == [make_item(7).id]
    assert not _windowed(asked[-1])


@pytest.mark.parametrize(
    ("query", "matching"),
    [
        (ItemQuery(size=25), 240),
        (ItemQuery(q="问题", size=25), 240),
        (ItemQuery(q="排污", size=9), 80),
        (ItemQuery(q="排污", department="d0", size=4), 20),
    ],
    ids=["list", "common term", "rarer term", "term within a filter"],
)
def test_cursor_pages_read_below_the_cursor_are_those_of_the_whole_index(
    stores: tuple[ElasticsearchStore, ElasticsearchStore], query: ItemQuery, matching: int
) -> None:
    windowed, whole = stores
    asked = _asked(windowed)
    got, expected = windowed.search(query), whole.search(query)
    seen = [i.id for i in got.results]
    while expected.next is not None:
        assert got.next == expected.next
        got = windowed.search(query.model_copy(update={"after": got.next}))
        expected = whole.search(query.model_copy(update={"after": expected.next}))
        assert [i.id for i in got.results] == [i.id for i in expected.results]
        # The count is the whole query's on every page, as on the first.
        assert (got.total, got.total_capped) == (expected.total, expected.total_capped)
        seen += [i.id for i in got.results]
    assert got.next is None
    # Every matching item once, from the one dated years ahead down to the undated ones at the end.
    assert len(seen) == len(set(seen)) == matching
    # Every page after a cursor into dated items is read from the cursor's time down.
    assert any("'lte'" in str(q) for q in asked)
