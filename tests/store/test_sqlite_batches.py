"""A crawl batch costs the SQLite store a few calls into SQLite, not a handful per item and one per band.

Calls are counted on the store's connection (``execute`` and ``executemany``; an ``executemany`` runs its
rows inside SQLite without coming back to Python for each).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from service.store.sqlite import SqliteStore
from tests.store.builders import make_item


class _Counting:
    """The store's connection, recording each statement this process hands to it."""

    def __init__(self, conn: sqlite3.Connection, seen: list[str]) -> None:
        self.conn = conn
        self.seen = seen

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.seen.append(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.seen.append(sql)
        return self.conn.executemany(sql, *args)


def _statements(store: SqliteStore) -> list[str]:
    seen: list[str] = []
    store._local.conn = _Counting(store._conn(), seen)
    return seen


def test_a_batch_of_new_items_is_written_in_a_few_statements(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "items.sqlite3")
    store.init()
    items = [make_item(n, lsh=[n, 1000 + n, 2000 + n]) for n in range(100)]
    seen = _statements(store)
    result = store.upsert(items)
    assert len(result.new) == 100
    assert len(seen) <= 8, seen[:20]
    seen.clear()
    # A re-crawl of the same batch: one read of the stored fingerprints.
    assert len(store.upsert(items).unchanged) == 100
    assert len(seen) <= 4, seen[:20]
    assert {i.id for i in store.lsh_candidates({"x": [1005]})["x"]} == {items[5].id}


def test_candidates_of_a_batch_come_from_one_statement(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "items.sqlite3")
    store.init()
    stored = [make_item(n, lsh=[n, 1000 + n]) for n in range(100)]
    store.upsert(stored)
    seen = _statements(store)
    # 100 new items of 28 bands each (what a crawl batch asks), half of them sharing a band with a stored one.
    bands = {f"new{n}": [n if n % 2 else 5000 + n, *range(10_000 + 28 * n, 10_000 + 28 * n + 27)] for n in range(100)}
    found = store.lsh_candidates(bands, limit=5)
    assert set(found) == {f"new{n}" for n in range(1, 100, 2)}
    assert [i.id for i in found["new7"]] == [stored[7].id]
    assert len(seen) <= 10, len(seen)


def test_a_refused_value_in_a_batch_dead_letters_only_that_item(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "items.sqlite3")
    store.init()
    bad = make_item(50, lsh=[0xFFFF_0000_0000_0001])  # not a signed 64-bit key
    items = [make_item(n, lsh=[n]) for n in range(50)] + [bad] + [make_item(n, lsh=[n]) for n in range(51, 60)]
    result = store.upsert(items)
    assert [i for i, _ in result.dead_lettered] == [bad.id]
    assert result.new == [i.id for i in items if i is not bad]
    assert store.count() == 59
    assert [i.id for i in store.lsh_candidates({"x": [55]})["x"]] == [items[55].id]
