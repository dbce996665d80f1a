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
from service.masking import MASK
from service.store import sqlite_search
from service.store.base import (
    DeadLetter,
    IdRow,
    Item,
    ItemQuery,
    SearchPage,
    StoreUnavailable,
    TextRow,
    search_key,
)
from service.store.sqlite_schema import create_schema, register_functions
from service.store.sqlite_search import Plan
from service.store.sqlite_writes import COLUMNS, DATETIMES, Writing, ts


def _parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _short_indexable(term: str) -> bool:
    # A term holding a token separator (space, control) cannot be one token: it is searched by a scan.
    return not any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Zs", "Zl", "Zp"} for ch in term)


_FILTERS = ("channel", "source", "department", "event_id")
# The columns of each full-text index holding the masked copy, and those holding the original text (indexed
# only where the masked copy differs from it: see service.store.sqlite_schema).
_MASKED_COLUMNS = {"items_search": "{title_masked content_masked}", "items_short": "grams_masked"}
_ORIGINAL_COLUMNS = {"items_search": "{title content}", "items_short": "grams"}


def _phrase(plan: Plan, table: str, phrase: str, *, masked: bool) -> str:
    """The MATCH expression of one term in ``table``: the masked copy for non-admins; for admins every column.

    An item without personal data has its text indexed once, as the masked copy; one with personal data has
    both. Only a term holding the mask character can be in the masked copy and not in the original: for
    such a term (admins only) an item matches if its original text holds it or it has no personal data.
    """
    if masked:
        return f"{_MASKED_COLUMNS[table]} : {phrase}"
    if MASK in phrase:
        in_original = f"seq IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)"  # noqa: S608
        plan.filters.append(f"((title = title_masked AND content = content_masked) OR {in_original})")
        plan.params.append(f"{_ORIGINAL_COLUMNS[table]} : {phrase}")
    return phrase


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# The newest items of each band of a batch, in one statement (bands as a VALUES list, a LIMIT per band).
_BAND_LOOKUP = """
WITH wanted(band) AS (VALUES {values})
SELECT band, (SELECT group_concat(seq) FROM (
    SELECT seq FROM item_lsh WHERE item_lsh.band = wanted.band ORDER BY seq DESC LIMIT {cap}
)) FROM wanted
"""
_BANDS_PER_STATEMENT = 500


class SqliteStore(Writing):
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

    # -- writes (upsert: service.store.sqlite_writes) ------------------------------------------
    def mark_matched(self, item_ids: Sequence[str]) -> None:
        if not item_ids:
            return
        conn = self._conn()
        now = ts(clock.now())
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
        data = {name: row[name] for name in COLUMNS}
        for name in DATETIMES:
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
        for raw_term in query.terms():
            term = search_key(raw_term)
            phrase = '"' + term.replace('"', '""') + '"'
            if len(term) >= 3:
                fts_terms.append(_phrase(plan, "items_search", phrase, masked=query.masked))
            elif term and _short_indexable(term):
                short_terms.append(_phrase(plan, "items_short", phrase, masked=query.masked))
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
            plan.params.append(ts(query.date_from))
        if query.date_to is not None:
            plan.filters.append("published_at < ?")
            plan.params.append(ts(query.date_to))
        return plan

    def search(self, query: ItemQuery) -> SearchPage:
        return sqlite_search.run(self._conn(), self._plan(query), query, self._item)

    def iter_texts(self, query: ItemQuery, limit: int | None = None) -> Iterator[list[TextRow]]:
        # The stored masked copy for non-admins: masking thousands of texts again would cost a trial more
        # than reading them.
        columns = "id, source, title_masked, content_masked" if query.masked else "id, source, title, content"
        for rows in sqlite_search.texts(self._conn(), self._plan(query), query, columns, limit):
            yield [(r[2], r[3], _parse_ts(r[1]), r[4], r[5]) for r in rows]

    def iter_ids(self, query: ItemQuery, limit: int | None = None) -> Iterator[list[IdRow]]:
        # Handles are seqs, keys (dated, published_at, seq): both from the listing index. Undated items last.
        for rows in sqlite_search.ids(self._conn(), self._plan(query), query, limit):
            yield [(r[0], (r[1] is not None, r[1] or "", r[0])) for r in rows]

    def texts_of(self, handles: Sequence[Any], masked: bool) -> dict[Any, TextRow]:
        texts = "title_masked, content_masked" if masked else "title, content"
        seqs = list(handles)
        found: dict[Any, TextRow] = {}
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            sql = f"SELECT seq, id, source, published_at, {texts} FROM items WHERE seq IN ({marks})"  # noqa: S608
            for r in self._conn().execute(sql, chunk):
                found[r[0]] = (r[1], r[2], _parse_ts(r[3]), r[4], r[5])
        return found

    def finds_exactly(self, text: str) -> bool:
        # Trigrams and pairs of the folded text (the matcher's own folding), or a scan of it: a phrase is found
        # exactly where the folded text holds it.
        return True

    def finds_within_words(self, text: str) -> bool:
        # Trigrams, pairs and single characters: any substring is found.
        return True

    def count(self, query: ItemQuery | None = None) -> int:
        plan = self._plan(query or ItemQuery())
        clauses, text_params = plan.in_lists()
        where, params = plan.where(clauses), [*plan.params, *text_params]
        return self._conn().execute(f"SELECT count(*) FROM items{where}", params).fetchone()[0]  # noqa: S608

    def day_counts(self, start: datetime, days: int) -> list[int]:
        # One range scan of the stored_at index, grouped by whole days since ``start``. julianday() rounds to
        # the millisecond, so the text is cut to whole milliseconds first (23:59:59.9996 rounded up was counted
        # as the next day's), and the difference is taken in whole milliseconds before dividing.
        rows = (
            self._conn()
            .execute(
                "SELECT CAST(round((julianday(substr(stored_at, 1, 23)) - julianday(:start)) * 86400000) AS INTEGER)"
                " / 86400000 AS d, count(*) FROM items WHERE stored_at >= :lo AND stored_at < :hi GROUP BY d",
                {
                    "start": start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "lo": ts(start),
                    "hi": ts(start + timedelta(days=days)),
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

    def lsh_candidates(self, bands: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        """Stored items sharing a band with each key's bands: one statement per 500 distinct bands of the batch,
        one index seek per band inside it."""
        conn = self._conn()
        # A band shared by very many items (a template's lead) is capped at its newest items.
        per_band: dict[int, list[int]] = {}
        wanted = sorted({b for keys in bands.values() for b in keys})
        for start in range(0, len(wanted), _BANDS_PER_STATEMENT):
            chunk = wanted[start : start + _BANDS_PER_STATEMENT]
            sql = _BAND_LOOKUP.format(values=", ".join("(?)" for _ in chunk), cap=int(limit) * 4)
            rows = conn.execute(sql, chunk)
            for band, seqs in rows:
                if seqs:
                    per_band[band] = [int(s) for s in seqs.split(",")]
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
