"""Search on the masked copy: a query for the digits of a masked number finds nothing (both backends).

Found by a leader: search ran on the original text, so ``q=<title words> 158<d>`` recovered a masked mobile
one digit at a time (4 queries) and the 8 hidden digits of an ID number in 28.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from service.store.base import ItemQuery, Store
from tests.store.builders import make_item

TITLE = "小区物业拖欠维修基金"
CONTENT = "业主张某，电话15812345678，身份证110101199003074514，多次反映无果。"


def _found(store: Store, q: str, *, masked: bool) -> int:
    return store.search(ItemQuery(q=q, masked=masked)).total


def test_hidden_digits_are_not_searchable_on_the_masked_copy(store: Store) -> None:
    store.upsert([make_item(1, title=TITLE, content=CONTENT), make_item(2)])
    # What a non-admin sees, they may search for.
    assert _found(store, f"{TITLE} 158****5678", masked=True) == 1
    assert _found(store, "110101********4514", masked=True) == 1
    assert _found(store, "物业 158", masked=True) == 1
    # The digits the mask hides answer no query, whichever way the guess is written.
    for guess in ("1581", "15812", "158123", "15812345678", "1990", "19900307", "110101199003074514", "34"):
        assert _found(store, f"{TITLE} {guess}", masked=True) == 0, guess
    # The original stays searchable for admins.
    assert _found(store, "15812345678", masked=False) == 1
    assert _found(store, "110101199003074514", masked=False) == 1


def test_an_update_refreshes_the_masked_copy(store: Store) -> None:
    store.upsert([make_item(1, title=TITLE, content="电话13900001111")])
    store.upsert([make_item(1, title=TITLE, content="电话15912345678")])
    assert _found(store, "159****5678", masked=True) == 1
    assert _found(store, "139****1111", masked=True) == 0


def test_a_store_file_from_before_the_masked_copy_gets_one(tmp_path: Path) -> None:
    from service.store.sqlite import SqliteStore

    path = tmp_path / "items.sqlite3"
    old = SqliteStore(path)
    old.upsert([make_item(1, title=TITLE, content=CONTENT)])
    old.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        DROP TRIGGER items_search_ai; DROP TRIGGER items_search_ad; DROP TRIGGER items_search_au;
        DROP TABLE items_search;
        DROP TRIGGER items_short_ai; DROP TRIGGER items_short_ad; DROP TRIGGER items_short_au;
        DROP TABLE items_short; DROP TABLE store_meta;
        ALTER TABLE items DROP COLUMN title_masked; ALTER TABLE items DROP COLUMN content_masked;
        """
    )
    conn.close()
    reopened = SqliteStore(path)
    assert _found(reopened, "158****5678", masked=True) == 1
    assert _found(reopened, f"{TITLE} 1581", masked=True) == 0
    reopened.close()
