"""A crawl batch costs the SQLite store a few calls into SQLite, not a handful per item and one per band.

Calls are counted on the store's connection (``execute`` and ``executemany``; an ``executemany`` runs its
rows inside SQLite without coming back to Python for each).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from service.store.base import ItemQuery
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
    # The transaction, the stored fingerprints, the items, their seqs, their band keys, each full-text index.
    assert len(seen) <= 11, seen[:20]
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


def _segments(conn: sqlite3.Connection, table: str) -> int:
    """Segments of an FTS5 index, from its structure record (rowid 10 of ``<table>_data``)."""
    record = bytes(conn.execute(f"SELECT block FROM {table}_data WHERE id = 10").fetchone()[0])
    pos = 8 if record[4:8] == b"\xff\x00\x00\x01" else 4  # a 4-byte cookie, then the format's marker if any
    values = []
    while len(values) < 2:  # varints: levels, then segments
        value = 0
        while True:
            byte = record[pos]
            pos += 1
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        values.append(value)
    return values[1]


def test_a_batch_adds_one_segment_to_each_full_text_index_not_one_per_item(tmp_path: Path) -> None:
    # Filled by triggers, inside each inserting statement's savepoint, every item became a segment of its own,
    # which FTS5 then spent most of a crawl's store time merging (merges are turned off here to count them).
    store = SqliteStore(tmp_path / "items.sqlite3")
    conn = store._conn()
    for table in ("items_search", "items_short"):
        conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('automerge', 0)")
        conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('crisismerge', 1000)")
    store.upsert([make_item(n, content=f"第{n}号楼夜间施工噪音，电话1381234{n:04d}") for n in range(40)])
    store.upsert([make_item(n, content=f"第{n}号楼路灯不亮") for n in range(40, 80)])
    assert _segments(conn, "items_search") <= 2
    assert _segments(conn, "items_short") <= 2
    assert store.search(ItemQuery(q="施工噪音")).total == 40
    assert store.search(ItemQuery(q="路灯")).total == 40
