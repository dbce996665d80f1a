"""The SQLite store indexes an item's text once when it holds no personal data (its masked copy is the same
text), both texts when it does; searches answer as when every item held both, on new and older store files.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from service import clock
from service.store.base import Item, ItemQuery, search_key
from service.store.sqlite import SqliteStore
from service.store.sqlite_schema import _layout_triggers, _statements
from service.store.sqlite_writes import row_values
from tests.store.builders import make_item

PHONE = "业主电话13812345678，夜间施工噪音"  # masked: 业主电话138****5678，夜间施工噪音
PLAIN = "夜间施工噪音扰民，星号**不是掩码"

# The index triggers of releases before this layout: both texts of every item in both indexes.
EARLIER_TRIGGERS = """
DROP TRIGGER items_search_ai; DROP TRIGGER items_search_ad; DROP TRIGGER items_search_au;
DROP TRIGGER items_short_ai; DROP TRIGGER items_short_ad; DROP TRIGGER items_short_au;
DELETE FROM store_meta WHERE key IN ('index_layout', 'short_full_below');
CREATE TRIGGER items_search_ai AFTER INSERT ON items BEGIN
    INSERT INTO items_search(rowid, title, content, title_masked, content_masked) VALUES
    (new.seq, yq_fold(new.title), yq_fold(new.content), yq_fold(new.title_masked), yq_fold(new.content_masked));
END;
CREATE TRIGGER items_search_ad AFTER DELETE ON items BEGIN
    DELETE FROM items_search WHERE rowid = old.seq;
END;
CREATE TRIGGER items_search_au AFTER UPDATE OF title, content, title_masked, content_masked ON items BEGIN
    DELETE FROM items_search WHERE rowid = old.seq;
    INSERT INTO items_search(rowid, title, content, title_masked, content_masked) VALUES
    (new.seq, yq_fold(new.title), yq_fold(new.content), yq_fold(new.title_masked), yq_fold(new.content_masked));
END;
CREATE TRIGGER items_short_ai AFTER INSERT ON items BEGIN
    INSERT INTO items_short(rowid, grams, grams_masked) VALUES
    (new.seq, yq_grams(new.title, new.content), yq_grams(new.title_masked, new.content_masked));
END;
CREATE TRIGGER items_short_ad AFTER DELETE ON items BEGIN
    INSERT INTO items_short(items_short, rowid, grams, grams_masked) VALUES
    ('delete', old.seq, yq_grams(old.title, old.content), yq_grams(old.title_masked, old.content_masked));
END;
CREATE TRIGGER items_short_au AFTER UPDATE OF title, content, title_masked, content_masked ON items BEGIN
    INSERT INTO items_short(items_short, rowid, grams, grams_masked) VALUES
    ('delete', old.seq, yq_grams(old.title, old.content), yq_grams(old.title_masked, old.content_masked));
    INSERT INTO items_short(rowid, grams, grams_masked) VALUES
    (new.seq, yq_grams(new.title, new.content), yq_grams(new.title_masked, new.content_masked));
END;
"""


def _insert_as_earlier_release(store: SqliteStore, items: list[Item]) -> None:
    """Rows as a release before the writer filled the full-text indexes inserts them: the insert triggers do."""
    conn = store._conn()
    now = clock.now()
    for item in items:
        values = row_values(item.with_fingerprint().model_copy(update={"stored_at": now, "updated_at": now}))
        del values["indexed"]  # a column the earlier release does not know
        cols = ", ".join(values)
        marks = ", ".join(f":{c}" for c in values)
        conn.execute(f"INSERT INTO items ({cols}) VALUES ({marks})", values)


def _ids(store: SqliteStore, q: str, *, masked: bool) -> set[str]:
    return {i.id for i in store.search(ItemQuery(q=q, masked=masked, size=500)).results}


def _scan(store: SqliteStore, term: str, *, masked: bool) -> set[str]:
    """The answer by definition: items whose folded title or content (masked copy or original) holds the term."""
    key = search_key(term)
    columns = ("title_masked", "content_masked") if masked else ("title", "content")
    rows = store._conn().execute("SELECT id, title, content, title_masked, content_masked FROM items")
    return {row["id"] for row in rows if any(key in search_key(row[c]) for c in columns)}


def _original_tokens(store: SqliteStore, item_id: str) -> int:
    """Index entries of the item's original text (the columns beside the masked copy) in both indexes."""
    conn = store._conn()
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.v_search USING fts5vocab(main, items_search, 'instance')")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.v_short USING fts5vocab(main, items_short, 'instance')")
    (seq,) = conn.execute("SELECT seq FROM items WHERE id = ?", (item_id,)).fetchone()
    search = conn.execute("SELECT count(*) FROM v_search WHERE doc = ? AND col IN ('title', 'content')", (seq,))
    short = conn.execute("SELECT count(*) FROM v_short WHERE doc = ? AND col = 'grams'", (seq,))
    return int(search.fetchone()[0]) + int(short.fetchone()[0])


TERMS = ("夜间施工", "噪音", "138", "5678", "1381", "**", "8*", "*", "****", "138****5678", "星号**", "扰民")


def _check_answers(store: SqliteStore) -> None:
    for term in TERMS:
        for masked in (False, True):
            assert _ids(store, f'"{term}"', masked=masked) == _scan(store, term, masked=masked), (term, masked)


def test_an_item_without_personal_data_is_indexed_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "items.sqlite3")
    try:
        plain, phone = make_item(1, title="噪音", content=PLAIN), make_item(2, title="噪音", content=PHONE)
        store.upsert([plain, phone])
        assert _original_tokens(store, plain.id) == 0
        assert _original_tokens(store, phone.id) > 0
        # An admin's search still finds both by their text, and only the original by the hidden digits.
        assert _ids(store, "夜间施工", masked=False) == {plain.id, phone.id}
        assert _ids(store, "13812345678", masked=False) == {phone.id}
        assert _ids(store, "13812345678", masked=True) == set()
    finally:
        store.close()


def test_a_term_with_the_mask_character_finds_for_admins_only_original_text(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "items.sqlite3")
    try:
        plain, phone = make_item(1, content=PLAIN), make_item(2, content=PHONE)
        store.upsert([plain, phone])
        # The masked copy of the phone item holds 138****5678; its original does not.
        assert _ids(store, "138****5678", masked=False) == set()
        assert _ids(store, "138****5678", masked=True) == {phone.id}
        assert _ids(store, "8*", masked=False) == set()
        assert _ids(store, "8*", masked=True) == {phone.id}
        assert _ids(store, "**", masked=False) == {plain.id}
        assert _ids(store, "星号**", masked=False) == {plain.id}
        _check_answers(store)
    finally:
        store.close()


def test_a_store_file_of_the_earlier_layout_keeps_answering_through_updates_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "items.sqlite3"
    old = SqliteStore(path)
    old.init()
    old.close()
    conn = sqlite3.connect(path)
    conn.create_function("yq_fold", 1, search_key, deterministic=True)
    conn.executescript(EARLIER_TRIGGERS)
    conn.close()
    old = SqliteStore(path)
    old._initialised = True  # as the earlier release: its triggers, no upgrade
    _insert_as_earlier_release(old, [make_item(n, content=PHONE if n % 2 else PLAIN) for n in range(1, 7)])
    old.close()
    store = SqliteStore(path)
    try:
        assert store.count() == 6
        _check_answers(store)
        # Earlier rows rewritten (with and without personal data) and removed, new rows beside them.
        store.upsert([make_item(1, content="改写后没有个人信息"), make_item(2, content="改写后电话13912345678")])
        store.upsert([make_item(n, content=PHONE if n % 2 else PLAIN) for n in range(7, 11)])
        store._conn().execute("DELETE FROM items WHERE id IN (?, ?)", (make_item(3).id, make_item(4).id))
        store.upsert([make_item(7, content="新的改写"), make_item(8, content="新的改写，电话13712345678")])
        _check_answers(store)
        for term in ("改写", "写后", "1391", "新的", "13712345678", "137"):
            for masked in (False, True):
                assert _ids(store, term, masked=masked) == _scan(store, term, masked=masked), (term, masked)
        conn = store._conn()
        for table in ("items_search", "items_short"):
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
    finally:
        store.close()


def test_a_store_file_whose_triggers_indexed_every_insert_is_upgraded_in_place(tmp_path: Path) -> None:
    """A file of the previous release: this layout, but its insert triggers indexed every row (no ``indexed``
    column). Opened by this release it keeps its rows and answers; rows inserted by the previous release
    after the upgrade (a rolled-back process) are still indexed by the triggers."""
    path = tmp_path / "items.sqlite3"
    SqliteStore(path).init()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER items_search_ai; DROP TRIGGER items_short_ai; ALTER TABLE items DROP COLUMN indexed;"
        "DELETE FROM store_meta WHERE key = 'index_triggers';"
    )
    conn.close()
    previous = SqliteStore(path)
    previous._initialised = True
    conn = previous._conn()
    for statement in _statements(_layout_triggers(1)):
        if "AFTER INSERT" in statement:  # the previous release's: every inserted row
            conn.execute(statement.replace(" WHEN new.indexed IS NULL", ""))
    _insert_as_earlier_release(previous, [make_item(n, content=PHONE if n % 2 else PLAIN) for n in range(1, 5)])
    previous.close()

    store = SqliteStore(path)
    try:
        assert store.count() == 4
        _check_answers(store)
        conn = store._conn()
        assert conn.execute("SELECT value FROM store_meta WHERE key = 'short_full_below'").fetchone()[0] == "1"
        store.upsert([make_item(n, content=PHONE if n % 2 else PLAIN) for n in range(5, 9)])
        _insert_as_earlier_release(store, [make_item(9, content=PHONE), make_item(10, content=PLAIN)])
        store.upsert([make_item(2, content="改写后电话13912345678"), make_item(6, content="改写后没有个人信息")])
        store._conn().execute("DELETE FROM items WHERE id IN (?, ?)", (make_item(3).id, make_item(7).id))
        assert store.count() == 8
        _check_answers(store)
        for term in ("改写", "1391", "写后"):
            for masked in (False, True):
                assert _ids(store, term, masked=masked) == _scan(store, term, masked=masked), (term, masked)
        for table in ("items_search", "items_short"):
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
    finally:
        store.close()
