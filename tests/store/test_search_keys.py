"""Search keys fold case and width while items keep their text as published (SQLite specifics)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from service.store.base import ItemQuery
from service.store.sqlite import SqliteStore
from tests.store.builders import make_item


def test_a_store_file_from_before_the_search_keys_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "items.sqlite3"
    old = SqliteStore(path)
    item = make_item(1, title="供暖问题（二期）", content="室温只有１２度，联系１３８１２３４５６７８")
    old.upsert([item])
    old.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER items_search_ai; DROP TRIGGER items_search_ad; DROP TRIGGER items_search_au;"
        "DROP TABLE items_search;"
    )
    conn.close()
    reopened = SqliteStore(path)
    try:
        assert [i.id for i in reopened.search(ItemQuery(q="12度")).results] == [item.id]
        assert reopened.search(ItemQuery(q="(二期)")).total == 1
        # Non-admins search the masked copy, folded too: the phone number is not an oracle.
        assert reopened.search(ItemQuery(q="12度", masked=True)).total == 1
        assert reopened.search(ItemQuery(q="13812345678", masked=True)).total == 0
        assert reopened.get(item.id).content == "室温只有１２度，联系１３８１２３４５６７８"  # type: ignore[union-attr]
    finally:
        reopened.close()
