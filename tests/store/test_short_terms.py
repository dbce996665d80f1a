"""One- and two-character terms on SQLite are served by the short-term index, with the scan's answers."""

from __future__ import annotations

import itertools
import random
import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from service.store.base import ItemQuery, search_key
from service.store.sqlite import SqliteStore
from service.store.sqlite_schema import short_grams
from tests.store.builders import make_item

ALPHABET = "排污水问题噪音扰民ＡＢab12１２，。、 !?🤔é\u00a0-_%\\\"'"


def _scan(store: SqliteStore, term: str, *, masked: bool) -> set[str]:
    """What the store answered before the index: every folded title and content containing the term."""
    key = search_key(term)
    found = set()
    for row in store._conn().execute("SELECT * FROM items"):
        title, content = (row["title_masked"], row["content_masked"]) if masked else (row["title"], row["content"])
        if key in search_key(title) or key in search_key(content):
            found.add(row["id"])
    return found


def _found(store: SqliteStore, q: str, *, masked: bool = False) -> set[str]:
    return {i.id for i in store.search(ItemQuery(q=q, masked=masked, size=500)).results}


def test_short_terms_find_what_a_scan_finds(tmp_path: Path) -> None:
    rng = random.Random(7)
    store = SqliteStore(tmp_path / "items.sqlite3")
    items = []
    for n in range(150):
        title = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))
        content = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
        if n % 10 == 0:
            content += "电话13812345678"
        items.append(make_item(n, title=title, content=content))
    store.upsert(items)
    # Rewritten items keep the index current: the old words are gone, the new ones found.
    store.upsert([make_item(3, title="改写", content="全新内容")])
    terms = {"排污", "污", "Ab", "ａｂ", "12", "，。", "🤔", "🤔a", "é", "%", "_", "\\", "'", "38", "改写", "写", "a "}
    terms |= {rng.choice(ALPHABET) + rng.choice(ALPHABET) for _ in range(40)}
    terms = {t for t in terms if '"' not in t}  # a double quote delimits a phrase in q
    try:
        for term in sorted(terms):
            for masked in (False, True):
                expected = _scan(store, term, masked=masked)
                assert _found(store, f'"{term}"', masked=masked) == expected, (term, masked)
        assert _found(store, "写") == {items[3].id}
        assert _found(store, "38", masked=True) == _scan(store, "38", masked=True)
        # The masked copy hides the digits from non-admins; admins search the original.
        assert _found(store, "81", masked=True) == set()
        assert len(_found(store, "81")) == 15
    finally:
        store.close()


def test_short_terms_are_answered_by_the_index_not_a_scan(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "items.sqlite3")
    store.upsert([make_item(1, title="排污口", content="夜间偷排"), make_item(2, title="噪音", content="扰民")])
    folds: list[str] = []
    conn = store._conn()
    # Counting the folding function's calls shows whether a query reads every row's text.
    conn.create_function("yq_fold", 1, lambda text: folds.append(text) or search_key(text), deterministic=True)
    try:
        assert [i.title for i in store.search(ItemQuery(q="排污")).results] == ["排污口"]
        assert [i.title for i in store.search(ItemQuery(q="排 口")).results] == ["排污口"]
        assert store.search(ItemQuery(q="民", masked=True)).total == 1
        assert folds == []
    finally:
        store.close()


def test_a_store_file_from_before_the_short_term_index_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "items.sqlite3"
    old = SqliteStore(path)
    old.upsert([make_item(1, title="排污口", content="电话13812345678")])
    old.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER items_short_ai; DROP TRIGGER items_short_ad; DROP TRIGGER items_short_au;"
        "DROP TABLE items_short; DROP TABLE store_meta;"
    )
    conn.close()
    reopened = SqliteStore(path)
    try:
        assert reopened.search(ItemQuery(q="排污")).total == 1
        assert reopened.search(ItemQuery(q="38")).total == 1
        assert reopened.search(ItemQuery(q="38", masked=True)).total == 1
        assert reopened.search(ItemQuery(q="81", masked=True)).total == 0
        reopened.upsert([make_item(2, title="污", content="")])
        assert reopened.search(ItemQuery(q="污")).total == 2
    finally:
        reopened.close()


def _grams_by_strings(*texts: str | None) -> list[str]:
    """The short-term tokens as earlier releases made them (one string per character and per pair)."""
    grams: set[str] = set()
    for text in texts:
        key = search_key(text)
        grams.update(key)
        grams.update(a + b for a, b in itertools.pairwise(key))
    return sorted(" ".join(grams).split(" ")) if grams else []


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet=ALPHABET + "\u0301\ud800ＡＢｃ\x00\x1f", max_size=40),
    st.one_of(st.none(), st.text(max_size=40)),
)
def test_the_short_terms_of_a_text_are_those_earlier_releases_indexed(title: str, content: str | None) -> None:
    # Rows indexed by an earlier release are deleted with the tokens this release computes: they must agree.
    made = short_grams(title, content)
    assert (sorted(made.split(" ")) if made else []) == _grams_by_strings(title, content)
