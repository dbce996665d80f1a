"""Writing items to the SQLite store: a crawl batch in a few statements, refused values dead-lettered one by one.

Part of :class:`service.store.sqlite.SqliteStore`. The full-text entries of inserted items are written here, a
batch per statement (:data:`service.store.sqlite_schema.FILL_SEARCH`); updates and deletes keep them in step
through the triggers of :mod:`service.store.sqlite_schema`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from service import clock
from service.masking import mask_text
from service.store.base import Item, UpsertResult
from service.store.sqlite_schema import FILL_SEARCH, FILL_SHORT

COLUMNS = (
    "id", "source", "channel", "external_id", "order_no", "url", "title", "content", "published_at", "fetched_at",
    "department", "status", "reply", "replied_at", "event_id", "fingerprint", "stored_at",
    "updated_at", "matched_at", "extra",
)  # fmt: skip
MASKED = ("title_masked", "content_masked")
DATETIMES = {"published_at", "fetched_at", "replied_at", "stored_at", "updated_at", "matched_at"}
# On update the re-crawled values replace these; stored_at, matched_at and event_id stay as first recorded.
UPDATABLE = (
    "external_id", "order_no", "url", "title", "content", "published_at", "fetched_at", "department", "status",
    "reply", "replied_at", "fingerprint", "extra",
)  # fmt: skip
# Ids per SELECT ... IN (...) statement.
_CHUNK = 500


def ts(value: datetime | None) -> str | None:
    """A time as the store writes it: fixed-width UTC text, so that string order is time order."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def row_values(item: Item) -> dict[str, Any]:
    """The items row of ``item``, its masked copy included."""
    values: dict[str, Any] = {}
    for name in COLUMNS:
        value = getattr(item, name)
        if name in DATETIMES:
            value = ts(value)
        elif name == "extra":
            value = json.dumps(value, ensure_ascii=False)
        values[name] = value
    values["lsh_done"] = 1 if item.lsh else None
    values["indexed"] = 1  # its full-text entries are written by _fill_indexes, not by the insert triggers
    values["title_masked"] = mask_text(item.title)
    values["content_masked"] = mask_text(item.content)
    return values


def _write_bands(conn: sqlite3.Connection, seq: int | None, bands: Sequence[int], *, replace: bool) -> None:
    # An item written without band keys (not through the crawl pipeline) keeps the ones it had.
    if seq is None or not bands:
        return
    if replace:
        conn.execute("DELETE FROM item_lsh WHERE seq = ?", (seq,))
    conn.executemany("INSERT OR IGNORE INTO item_lsh (band, seq) VALUES (?, ?)", [(b, seq) for b in set(bands)])


class Writing:
    """Upserts and band keys of :class:`service.store.sqlite.SqliteStore`."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def upsert(self, items: Sequence[Item]) -> UpsertResult:
        """Insert new items, replace changed ones, skip unchanged ones; refused values are dead-lettered."""
        result = UpsertResult()
        if not items:
            return result
        conn = self._conn()
        now = clock.now()
        prepared = [raw if raw.fingerprint else raw.with_fingerprint() for raw in items]
        conn.execute("BEGIN IMMEDIATE")
        try:
            existing = _fingerprints(conn, [item.id for item in prepared])
            # The new items of a batch of distinct ids (what a crawl writes) in one statement; the rest, or
            # all of them if a value is refused, item by item, so only refused items go to the dead letters.
            distinct = len({item.id for item in prepared}) == len(prepared)
            inserted = _insert_new(conn, [i for i in prepared if i.id not in existing] if distinct else [], now)
            for item in prepared:
                if item.id in inserted:
                    result.new.append(item.id)
                elif distinct and existing.get(item.id) == item.fingerprint:
                    result.unchanged.append(item.id)
                else:
                    _write_one(conn, item, now, result)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    def set_bands(self, bands: Mapping[str, Sequence[int]]) -> None:
        """Write band keys of stored items in one transaction (replacing the keys an item had)."""
        if not bands:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for item_id, keys in bands.items():
                row = conn.execute("SELECT seq, lsh_done FROM items WHERE id = ?", (item_id,)).fetchone()
                if row is None:
                    continue
                if row["lsh_done"]:
                    conn.execute("DELETE FROM item_lsh WHERE seq = ?", (row["seq"],))
                _write_bands(conn, row["seq"], keys, replace=False)
                conn.execute("UPDATE items SET lsh_done = 1 WHERE seq = ?", (row["seq"],))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _fingerprints(conn: sqlite3.Connection, ids: list[str]) -> dict[str, str]:
    """Stored fingerprints by id, one statement per 500 ids."""
    found: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        found.update(conn.execute(f"SELECT id, fingerprint FROM items WHERE id IN ({marks})", chunk))  # noqa: S608
    return found


def _insert_new(conn: sqlite3.Connection, items: list[Item], now: datetime) -> set[str]:
    """Insert items not stored yet with one statement and their band keys with another; the ids written,
    none when a value was refused (nothing of them is then written)."""
    if not items:
        return set()
    rows = [row_values(item.model_copy(update={"stored_at": now, "updated_at": now})) for item in items]
    cols = ", ".join(rows[0])
    marks = ", ".join(f":{c}" for c in rows[0])
    conn.execute("SAVEPOINT batch")
    try:
        # The transaction holds the write lock: the rows after the largest seq are this batch's.
        before = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]
        conn.executemany(f"INSERT INTO items ({cols}) VALUES ({marks})", rows)  # noqa: S608
        seqs = dict(conn.execute("SELECT id, seq FROM items WHERE seq > ?", (before,)).fetchall())
        conn.executemany(
            "INSERT OR IGNORE INTO item_lsh (band, seq) VALUES (?, ?)",
            [(band, seqs[item.id]) for item in items for band in set(item.lsh)],
        )
        _fill_indexes(conn, before)
    except (sqlite3.Error, TypeError, ValueError, OverflowError):
        conn.execute("ROLLBACK TO batch")
        conn.execute("RELEASE batch")
        return set()
    conn.execute("RELEASE batch")
    return {item.id for item in items}


def _fill_indexes(conn: sqlite3.Connection, after: int) -> None:
    """The full-text entries of the items inserted after seq ``after``: one statement per index, last in the
    batch's savepoint (FTS5 writes what it holds as a new segment at every statement savepoint after it)."""
    conn.execute(FILL_SEARCH, (after,))
    conn.execute(FILL_SHORT, (after,))


def _write_one(conn: sqlite3.Connection, item: Item, now: datetime, result: UpsertResult) -> None:
    """Upsert one item in its own savepoint: a value refused half-way (a band key out of range) leaves no row."""
    conn.execute("SAVEPOINT item")
    try:
        existing = conn.execute("SELECT fingerprint FROM items WHERE id = ?", (item.id,)).fetchone()
        if existing is None:
            values = row_values(item.model_copy(update={"stored_at": now, "updated_at": now}))
            cols = ", ".join(values)
            marks = ", ".join(f":{c}" for c in values)
            cursor = conn.execute(f"INSERT INTO items ({cols}) VALUES ({marks})", values)  # noqa: S608
            _write_bands(conn, cursor.lastrowid, item.lsh, replace=False)
            if cursor.lastrowid is not None:
                _fill_indexes(conn, cursor.lastrowid - 1)
            result.new.append(item.id)
        elif existing[0] == item.fingerprint:
            result.unchanged.append(item.id)
        else:
            values = row_values(item.model_copy(update={"updated_at": now}))
            keep = [*UPDATABLE, *MASKED, "updated_at", *(["lsh_done"] if item.lsh else [])]
            sets = ", ".join(f"{c} = :{c}" for c in keep)
            params = {c: values[c] for c in keep} | {"id": item.id}
            conn.execute(f"UPDATE items SET {sets} WHERE id = :id", params)  # noqa: S608
            if item.lsh:
                seq = conn.execute("SELECT seq FROM items WHERE id = ?", (item.id,)).fetchone()[0]
                _write_bands(conn, seq, item.lsh, replace=True)
            result.updated.append(item.id)
        conn.execute("RELEASE item")
    except (sqlite3.Error, TypeError, ValueError, OverflowError) as exc:
        conn.execute("ROLLBACK TO item")
        conn.execute("RELEASE item")
        reason = f"{type(exc).__name__}: {exc}"
        conn.execute(
            "INSERT INTO dead_letters (item_id, reason, document, at) VALUES (?, ?, ?, ?)",
            (item.id, reason, item.model_dump_json(), ts(now)),
        )
        result.dead_lettered.append((item.id, reason))
