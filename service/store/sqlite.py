"""The embedded item store: one SQLite file with FTS5 indexes for Chinese phrase search (trigrams; pairs and
single characters for one- and two-character terms).

The tables, indexes and triggers are in :mod:`service.store.sqlite_schema`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service import clock
from service.masking import mask_text
from service.store import sqlite_search
from service.store.base import (
    DeadLetter,
    Item,
    ItemQuery,
    SearchPage,
    StoreUnavailable,
    UpsertResult,
    search_key,
)
from service.store.sqlite_schema import create_schema, register_functions
from service.store.sqlite_search import Plan

_COLUMNS = (
    "id", "source", "channel", "external_id", "order_no", "url", "title", "content", "published_at", "fetched_at",
    "department", "status", "reply", "replied_at", "event_id", "fingerprint", "stored_at",
    "updated_at", "matched_at", "extra",
)  # fmt: skip
_MASKED = ("title_masked", "content_masked")
_DATETIMES = {"published_at", "fetched_at", "replied_at", "stored_at", "updated_at", "matched_at"}
# On update the re-crawled values replace these; stored_at, matched_at and event_id stay as first recorded.
_UPDATABLE = (
    "external_id", "order_no", "url", "title", "content", "published_at", "fetched_at", "department", "status",
    "reply", "replied_at", "fingerprint", "extra",
)  # fmt: skip


def _ts(value: datetime | None) -> str | None:
    # Fixed-width UTC text so that string order is time order.
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _short_indexable(term: str) -> bool:
    # A term holding a token separator (space, control) cannot be one token: it is searched by a scan.
    return not any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Zs", "Zl", "Zp"} for ch in term)


_FILTERS = ("channel", "source", "department", "event_id")


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqliteStore:
    """Items in one SQLite file (WAL mode, so the crawler process and the service can share it)."""

    backend = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._initialised = False

    # -- connection handling -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            except (OSError, sqlite3.Error) as exc:
                raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc
            conn.row_factory = sqlite3.Row
            register_functions(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            if not self._initialised:
                create_schema(conn)
                self._initialised = True
        return conn

    def init(self) -> None:
        """Create the schema (idempotent)."""
        self._conn()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def health(self) -> dict[str, Any]:
        try:
            self._conn().execute("SELECT 1").fetchone()
        except (StoreUnavailable, sqlite3.Error) as exc:
            return {"status": "down", "backend": self.backend, "error": str(exc)}
        return {"status": "ok", "backend": self.backend, "path": str(self.path)}

    # -- writes --------------------------------------------------------------------------------
    def _row_values(self, item: Item) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in _COLUMNS:
            value = getattr(item, name)
            if name in _DATETIMES:
                value = _ts(value)
            elif name == "extra":
                value = json.dumps(value, ensure_ascii=False)
            values[name] = value
        values["lsh_done"] = 1 if item.lsh else None
        values["title_masked"] = mask_text(item.title)
        values["content_masked"] = mask_text(item.content)
        return values

    def upsert(self, items: Sequence[Item]) -> UpsertResult:
        result = UpsertResult()
        if not items:
            return result
        conn = self._conn()
        now = clock.now()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for raw in items:
                item = raw if raw.fingerprint else raw.with_fingerprint()
                # One savepoint per item: a value refused half-way (a band key out of range) leaves no row.
                conn.execute("SAVEPOINT item")
                try:
                    existing = conn.execute("SELECT fingerprint FROM items WHERE id = ?", (item.id,)).fetchone()
                    if existing is None:
                        values = self._row_values(
                            item.model_copy(update={"stored_at": now, "updated_at": now, "event_id": item.event_id})
                        )
                        cols = ", ".join(values)
                        marks = ", ".join(f":{c}" for c in values)
                        cursor = conn.execute(f"INSERT INTO items ({cols}) VALUES ({marks})", values)  # noqa: S608
                        self._write_bands(conn, cursor.lastrowid, item.lsh, replace=False)
                        result.new.append(item.id)
                    elif existing["fingerprint"] == item.fingerprint:
                        result.unchanged.append(item.id)
                    else:
                        values = self._row_values(item.model_copy(update={"updated_at": now}))
                        keep = [*_UPDATABLE, *_MASKED, "updated_at", *(["lsh_done"] if item.lsh else [])]
                        sets = ", ".join(f"{c} = :{c}" for c in keep)
                        params = {c: values[c] for c in keep} | {"id": item.id}
                        conn.execute(f"UPDATE items SET {sets} WHERE id = :id", params)  # noqa: S608
                        if item.lsh:
                            seq = conn.execute("SELECT seq FROM items WHERE id = ?", (item.id,)).fetchone()[0]
                            self._write_bands(conn, seq, item.lsh, replace=True)
                        result.updated.append(item.id)
                    conn.execute("RELEASE item")
                except (sqlite3.Error, TypeError, ValueError, OverflowError) as exc:
                    conn.execute("ROLLBACK TO item")
                    conn.execute("RELEASE item")
                    reason = f"{type(exc).__name__}: {exc}"
                    conn.execute(
                        "INSERT INTO dead_letters (item_id, reason, document, at) VALUES (?, ?, ?, ?)",
                        (item.id, reason, item.model_dump_json(), _ts(now)),
                    )
                    result.dead_lettered.append((item.id, reason))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    @staticmethod
    def _write_bands(conn: sqlite3.Connection, seq: int | None, bands: Sequence[int], *, replace: bool) -> None:
        # An item written without band keys (not through the crawl pipeline) keeps the ones it had.
        if seq is None or not bands:
            return
        if replace:
            conn.execute("DELETE FROM item_lsh WHERE seq = ?", (seq,))
        conn.executemany("INSERT OR IGNORE INTO item_lsh (band, seq) VALUES (?, ?)", [(b, seq) for b in set(bands)])

    def mark_matched(self, item_ids: Sequence[str]) -> None:
        if not item_ids:
            return
        conn = self._conn()
        now = _ts(clock.now())
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "UPDATE items SET matched_at = ? WHERE id = ? AND matched_at IS NULL",
            [(now, i) for i in item_ids],
        )
        conn.execute("COMMIT")

    def set_event(self, item_ids: Sequence[str], event_id: str) -> None:
        if not item_ids:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("UPDATE items SET event_id = ? WHERE id = ?", [(event_id, i) for i in item_ids])
        conn.execute("COMMIT")

    # -- reads ---------------------------------------------------------------------------------
    @staticmethod
    def _item(row: sqlite3.Row) -> Item:
        data = {name: row[name] for name in _COLUMNS}
        for name in _DATETIMES:
            data[name] = _parse_ts(data[name])
        data["extra"] = json.loads(data["extra"] or "{}")
        return Item.model_validate(data)

    def get(self, item_id: str) -> Item | None:
        row = self._conn().execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return self._item(row) if row else None

    def get_many(self, item_ids: Sequence[str]) -> list[Item]:
        if not item_ids:
            return []
        found: dict[str, Item] = {}
        ids = list(item_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._conn().execute(f"SELECT * FROM items WHERE id IN ({marks})", chunk)  # noqa: S608
            for row in rows:
                found[row["id"]] = self._item(row)
        return [found[i] for i in ids if i in found]

    @staticmethod
    def _plan(query: ItemQuery) -> Plan:
        plan = Plan()
        fts_terms: list[str] = []
        short_terms: list[str] = []
        # The masked copy for every role but admin (see ItemQuery.masked), folded search keys for both.
        title, content = ("title_masked", "content_masked") if query.masked else ("title", "content")
        grams = "grams_masked" if query.masked else "grams"
        for raw_term in query.terms():
            term = search_key(raw_term)
            if len(term) >= 3:
                fts_terms.append(f"{{{title} {content}}} : " + '"' + term.replace('"', '""') + '"')
            elif term and _short_indexable(term):
                short_terms.append(f"{grams} : " + '"' + term.replace('"', '""') + '"')
            elif term:
                # A short term holding a space or a control character: a scan, as no token can hold it.
                pattern = f"%{_like_escape(term)}%"
                plan.filters.append(f"(yq_fold({title}) LIKE ? ESCAPE '\\' OR yq_fold({content}) LIKE ? ESCAPE '\\')")
                plan.params += [pattern, pattern]
        if fts_terms:
            plan.texts.append(("items_search", " AND ".join(fts_terms)))
        if short_terms:
            plan.texts.append(("items_short", " AND ".join(short_terms)))
        for column in _FILTERS:
            value = getattr(query, column)
            if value is not None:
                plan.filters.append(f"{column} = ?")
                plan.params.append(value)
        plan.column = next((c for c in ("department", "channel", "source") if getattr(query, c) is not None), None)
        plan.event = query.event_id is not None
        if query.date_from is not None:
            plan.filters.append("published_at >= ?")
            plan.params.append(_ts(query.date_from))
        if query.date_to is not None:
            plan.filters.append("published_at < ?")
            plan.params.append(_ts(query.date_to))
        return plan

    def search(self, query: ItemQuery) -> SearchPage:
        return sqlite_search.run(self._conn(), self._plan(query), query, self._item)

    def finds_within_words(self, text: str) -> bool:
        # Trigrams, pairs and single characters: any substring is found.
        return True

    def count(self, query: ItemQuery | None = None) -> int:
        plan = self._plan(query or ItemQuery())
        clauses, text_params = plan.in_lists()
        where, params = plan.where(clauses), [*plan.params, *text_params]
        return self._conn().execute(f"SELECT count(*) FROM items{where}", params).fetchone()[0]  # noqa: S608

    def day_counts(self, start: datetime, days: int) -> list[int]:
        # One range scan of the stored_at index, grouped by whole days since ``start``.
        rows = (
            self._conn()
            .execute(
                "SELECT CAST(julianday(substr(stored_at, 1, 26)) - julianday(:start) AS INTEGER) AS d, count(*)"
                " FROM items WHERE stored_at >= :lo AND stored_at < :hi GROUP BY d",
                {
                    "start": start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "lo": _ts(start),
                    "hi": _ts(start + timedelta(days=days)),
                },
            )
            .fetchall()
        )
        out = [0] * days
        for day, count in rows:
            if 0 <= day < days:
                out[day] = count
        return out

    def iter_unmatched(self, batch_size: int = 500) -> Iterator[list[Item]]:
        last = 0
        while True:
            rows = (
                self._conn()
                .execute(
                    "SELECT * FROM items WHERE matched_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                    (last, batch_size),
                )
                .fetchall()
            )
            if not rows:
                return
            last = rows[-1]["seq"]
            yield [self._item(r) for r in rows]

    def iter_without_bands(self, batch_size: int = 500) -> Iterator[list[Item]]:
        """Items without band keys, oldest first; keyset paging on the partial index ``items_no_lsh``."""
        last = 0
        while True:
            rows = (
                self._conn()
                .execute(
                    "SELECT * FROM items WHERE lsh_done IS NULL AND seq > ? ORDER BY seq LIMIT ?", (last, batch_size)
                )
                .fetchall()
            )
            if not rows:
                return
            last = rows[-1]["seq"]
            yield [self._item(r) for r in rows]

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
                self._write_bands(conn, row["seq"], keys, replace=False)
                conn.execute("UPDATE items SET lsh_done = 1 WHERE seq = ?", (row["seq"],))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def lsh_candidates(self, bands: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        """Stored items sharing a band with each key's bands; one index seek per distinct band of the batch."""
        conn = self._conn()
        # A band shared by very many items (a template's lead) is capped at its newest items.
        per_band: dict[int, list[int]] = {}
        for band in {b for keys in bands.values() for b in keys}:
            rows = conn.execute(
                "SELECT seq FROM item_lsh WHERE band = ? ORDER BY seq DESC LIMIT ?", (band, limit * 4)
            ).fetchall()
            if rows:
                per_band[band] = [r[0] for r in rows]
        chosen: dict[str, list[int]] = {}
        for key, keys in bands.items():
            shared: dict[int, int] = {}
            for band in set(keys):
                for seq in per_band.get(band, ()):
                    shared[seq] = shared.get(seq, 0) + 1
            if shared:
                chosen[key] = sorted(shared, key=lambda s: (-shared[s], s))[:limit]
        wanted = sorted({s for seqs in chosen.values() for s in seqs})
        by_seq: dict[int, Item] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in conn.execute(f"SELECT * FROM items WHERE seq IN ({marks})", chunk):  # noqa: S608
                by_seq[row["seq"]] = self._item(row)
        return {key: [by_seq[s] for s in seqs if s in by_seq] for key, seqs in chosen.items()}

    def counts(self) -> dict[str, Any]:
        conn = self._conn()
        total = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        unmatched = conn.execute("SELECT count(*) FROM items WHERE matched_at IS NULL").fetchone()[0]
        by_channel = dict(conn.execute("SELECT channel, count(*) FROM items GROUP BY channel").fetchall())
        by_source = dict(conn.execute("SELECT source, count(*) FROM items GROUP BY source").fetchall())
        return {"total": total, "unmatched": unmatched, "by_channel": by_channel, "by_source": by_source}

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._conn().execute("SELECT * FROM dead_letters ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [
            DeadLetter(
                item_id=r["item_id"],
                reason=r["reason"],
                document=json.loads(r["document"]),
                at=_parse_ts(r["at"]) or clock.now(),
            )
            for r in rows
        ]
