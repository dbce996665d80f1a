"""SQLite searches whose cost follows the page: common terms read by ranges, cursors as index ranges."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from service.store import sqlite_search
from service.store.base import Item, ItemQuery, search_key
from service.store.sqlite import SqliteStore
from tests.store.builders import DAY0, make_item

WORDS = ["问题", "排污", "噪音", "市民反映", "夜间施工", "化工厂", "，", "。"]


def _items() -> list[Item]:
    """Items stored out of publication order (a crawl back-fills old items), some undated."""
    rng = random.Random(5)
    items = []
    for n in range(240):
        content = "".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))
        published = None if n % 37 == 0 else DAY0 + timedelta(hours=rng.randint(0, 400))
        items.append(make_item(n, content=content, published_at=published, department=f"d{n % 4}"))
    rng.shuffle(items)
    return items


@pytest.fixture
def store(tmp_path: Path):
    store = SqliteStore(tmp_path / "items.sqlite3")
    for start in range(0, 240, 60):  # several transactions, as crawls write them
        store.upsert(_items()[start : start + 60])
    yield store
    store.close()


def _expected(store: SqliteStore, query: ItemQuery) -> list[str]:
    """Every match in the listing order, worked out in Python from all rows."""
    rows = store._conn().execute("SELECT * FROM items").fetchall()
    keys = [search_key(t) for t in query.terms()]
    out = []
    for row in rows:
        title, content = ("title_masked", "content_masked") if query.masked else ("title", "content")
        text = search_key(row[title]) + "\n" + search_key(row[content])
        if not all(k in text for k in keys):
            continue
        if query.department is not None and row["department"] != query.department:
            continue
        if query.date_from is not None and (row["published_at"] is None or row["published_at"] < _ts(query)):
            continue
        out.append(row)
    dated = sorted((r for r in out if r["published_at"]), key=lambda r: (r["published_at"], r["seq"]), reverse=True)
    undated = sorted((r for r in out if not r["published_at"]), key=lambda r: r["seq"], reverse=True)
    return [r["id"] for r in dated + undated]


def _ts(query: ItemQuery) -> str:
    assert query.date_from is not None
    return query.date_from.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _all_pages(store: SqliteStore, query: ItemQuery) -> list[str]:
    ids: list[str] = []
    for _ in range(100):
        page = store.search(query)
        ids += [i.id for i in page.results]
        if page.next is None:
            return ids
        query = query.model_copy(update={"after": page.next})
    raise AssertionError("the cursor never ended")


QUERIES = [
    {"q": "问题"},
    {"q": "问题", "department": "d1"},
    {"q": "问题 排污"},
    {"q": "问 市民反映"},
    {"q": "噪音", "date_from": DAY0 + timedelta(hours=150)},
    {"q": "化工厂", "department": "d2", "masked": True},
]


@pytest.mark.parametrize("fields", QUERIES, ids=[str(f) for f in QUERIES])
def test_common_terms_page_in_the_listing_order_read_by_ranges(store, monkeypatch, fields) -> None:
    """Terms with many matches are read a chunk of the listing at a time: the same pages as a full sort."""
    few = [_all_pages(store, ItemQuery(size=9, **fields))]
    # Every term now counts as common, and chunks are small, so pages cross many chunks and the undated tail.
    monkeypatch.setattr(sqlite_search, "FEW_MATCHES", 3)
    monkeypatch.setattr(sqlite_search, "FIRST_CHUNK", 5)
    monkeypatch.setattr(sqlite_search, "LARGEST_CHUNK", 11)
    expected = _expected(store, ItemQuery(**fields))
    assert len(expected) > 9
    assert _all_pages(store, ItemQuery(size=9, **fields)) == expected
    assert few == [expected]
    # Numbered pages too (OFFSET within the walk).
    assert [i.id for i in store.search(ItemQuery(size=4, page=3, **fields)).results] == expected[8:12]


def test_a_common_term_within_a_filter_is_counted_from_a_sample_and_says_so(store, monkeypatch) -> None:
    exact = store.search(ItemQuery(q="问题", department="d1"))
    assert (exact.total_estimated, exact.total_capped) == (False, False)
    monkeypatch.setattr(sqlite_search, "FEW_MATCHES", 3)
    monkeypatch.setattr(sqlite_search, "COUNT_SAMPLE", 30)
    estimated = store.search(ItemQuery(q="问题", department="d1"))
    assert estimated.total_estimated is True
    # 60 items in d1; the estimate scales the newest 30's share of matches.
    assert abs(estimated.total - exact.total) <= 15
    # A filter holding no more than the sample is counted exactly.
    recent = ItemQuery(q="问题", department="d1", date_from=DAY0 + timedelta(hours=300))
    small = store.search(recent)
    assert small.total_estimated is False
    assert small.total == len(_expected(store, recent))
    # Terms alone are counted in the index, exactly up to the cap.
    assert store.search(ItemQuery(q="问题")).total_estimated is False


def test_a_cursor_page_reads_the_listing_index_from_the_cursor_on(store) -> None:
    """A page after a cursor must not collect and sort every row before it (seconds at a million items)."""
    conn = store._conn()
    page = store.search(ItemQuery(size=5))
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        store.search(ItemQuery(size=5, after=page.next))
        store.search(ItemQuery(size=5, after=page.next, department="d3"))
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.startswith("SELECT * FROM items")]
    assert selects
    for sql in selects:
        plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "TEMP B-TREE" not in plan, (sql, plan)
