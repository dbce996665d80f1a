"""Searches of the SQLite item store whose cost follows the page asked for, not the number of matches.

A page is read in the listing order (newest published first, undated last) from the index that fits the
filters; a cursor (``after``) becomes a range of that index, so a deep page costs what page 1 costs. Text
terms are answered by the full-text indexes (``items_search`` for three characters and more, ``items_short``
for one and two):

* a term with few matches (at most ``FEW_MATCHES``) is handed to SQLite as the list of its matches;
* a term with many matches (问题 at a million items matches half of them) is never read whole: the listing is
  walked a chunk at a time, and only the part of the term's match list inside the chunk's ``seq`` range is
  read (full-text indexes seek by rowid). Items are stored roughly in publication order, so that range is
  about as wide as the chunk and the page is found after reading a few times its own size.

Counting stops at ``COUNT_CAP``; a count of a common term within a filter is estimated from a sample of the
filter's newest items (``SearchPage.total_estimated``) instead of reading every match.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.store import base
from service.store.base import BAD_CURSOR, BadCursor, ItemQuery, SearchPage, decode_cursor, encode_cursor

_ORDER = " ORDER BY published_at IS NULL, published_at DESC, seq DESC"
# A term with at most this many matches is used as a list of matches; with more its list is read by ranges.
FEW_MATCHES = 10_000
# Above this many matches a search walks the listing order instead of sorting its matches.
WALK_ORDER_ABOVE = 1000
# Rows of the listing read per step of a walk (doubling up to the largest).
FIRST_CHUNK, LARGEST_CHUNK = 200, 6400
# Items of a filter whose matches are counted before the count of a common term is estimated.
COUNT_SAMPLE = 1000

_FILTER_COLUMNS = ("channel", "source", "department", "event_id")


@dataclass
class Plan:
    """One search split into its filters (SQL on items) and its text terms (full-text MATCH expressions)."""

    filters: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    # (table, MATCH expression): every table must match.
    texts: list[tuple[str, str]] = field(default_factory=list)
    column: str | None = None  # the filter column whose own listing index the page walks

    def where(self, extra: Sequence[str] = ()) -> str:
        clauses = [*self.filters, *extra]
        return (" WHERE " + " AND ".join(clauses)) if clauses else ""

    def in_lists(self) -> tuple[list[str], list[Any]]:
        clauses = [f"seq IN (SELECT rowid FROM {t} WHERE {t} MATCH ?)" for t, _ in self.texts]  # noqa: S608
        return clauses, [m for _, m in self.texts]

    event: bool = False  # filtered on one event: its few rows are read by their own index and sorted

    @property
    def walk_source(self) -> str:
        """Items read in the listing order by the index that fits the filters."""
        if self.event:
            return "items"
        return f"items INDEXED BY items_{self.column}_newest" if self.column else "items INDEXED BY items_newest"


def after_parts(after: str | None) -> list[tuple[str | None, list[Any]]]:
    """The rows after a cursor as parts that each read a range of the listing index, in listing order."""
    if after is None:
        return [(None, [])]
    published, seq = decode_cursor(after, 2)
    if not isinstance(seq, int) or not (published is None or isinstance(published, str)):
        raise BadCursor(BAD_CURSOR)
    if published is None:
        return [("published_at IS NULL AND seq < ?", [seq])]
    # Written as a range of published_at (not as one OR of the three cases) so that SQLite reads the index
    # from the cursor on instead of collecting and sorting every row before it; undated rows come last.
    return [
        ("published_at <= ? AND (published_at < ? OR seq < ?)", [published, published, seq]),
        ("published_at IS NULL", []),
    ]


class Searcher:
    """Runs one :class:`ItemQuery` on a connection of the store."""

    def __init__(self, conn: sqlite3.Connection, plan: Plan, query: ItemQuery, columns: str = "*") -> None:
        self.conn = conn
        self.plan = plan
        self.query = query
        # What a page reads of each row; seq first (``*`` starts with it too).
        self.columns = columns

    # -- counting ------------------------------------------------------------------------------------------
    def _text_count(self, cap: int) -> int:
        sets = " INTERSECT ".join(f"SELECT rowid FROM {t} WHERE {t} MATCH ?" for t, _ in self.plan.texts)  # noqa: S608
        params = [m for _, m in self.plan.texts]
        return int(self.conn.execute(f"SELECT count(*) FROM ({sets} LIMIT ?)", [*params, cap]).fetchone()[0])  # noqa: S608

    def _filter_count(self, limit: int | None = None) -> int:
        row = self.conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM items{self.plan.where()} LIMIT ?)",  # noqa: S608
            [*self.plan.params, base.COUNT_CAP + 1 if limit is None else limit],
        ).fetchone()
        return int(row[0])

    def count(self) -> tuple[int, bool, bool, int | None]:
        """(total up to the cap, capped, estimated, how many the text terms match up to FEW_MATCHES + 1)."""
        cap = base.COUNT_CAP
        if not self.plan.texts:
            total = self._filter_count()
            return min(total, cap), total > cap, False, None
        matches = self._text_count(max(FEW_MATCHES, cap) + 1)
        if not self.plan.filters:
            return min(matches, cap), matches > cap, False, matches
        if matches <= FEW_MATCHES:
            clauses, params = self.plan.in_lists()
            total = int(
                self.conn.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM items{self.plan.where(clauses)} LIMIT ?)",  # noqa: S608
                    [*self.plan.params, *params, cap + 1],
                ).fetchone()[0]
            )
            return min(total, cap), total > cap, False, matches
        # A common term within a filter: count the matches among the filter's newest items; when the
        # filter holds more, scale by the filter's size (itself counted up to the cap).
        seen = found = 0
        exhausted = True
        for rows, kept in self._walk(None):
            seen += len(rows)
            found += len(kept)
            if seen >= COUNT_SAMPLE:
                exhausted = False
                break
        if exhausted:
            return min(found, cap), found > cap, False, matches
        # The filter's size matters only up to where the estimate passes the cap: count that far at most.
        enough = -(-(cap + 1) * seen // found) if found else cap + 1
        size = self._filter_count(limit=enough)
        estimate = round(found * size / seen)
        return min(estimate, cap), estimate > cap or size >= enough, True, matches

    # -- pages ---------------------------------------------------------------------------------------------
    def _walk(self, after: str | None) -> Iterator[tuple[list[sqlite3.Row], list[sqlite3.Row]]]:
        """Chunks of the listing from the cursor on: (the chunk's rows, those the text terms match)."""
        for part, part_params in after_parts(after):
            extra = [part] if part else []
            marker: list[Any] = []
            chunk = FIRST_CHUNK
            while True:
                clauses = [*extra, *marker[:1]]
                rows = self.conn.execute(
                    f"SELECT seq, published_at FROM {self.plan.walk_source}{self.plan.where(clauses)}{_ORDER} LIMIT ?",  # noqa: S608
                    [*self.plan.params, *part_params, *marker[1:], chunk],
                ).fetchall()
                if not rows:
                    break
                seqs = [r[0] for r in rows]
                lo, hi = min(seqs), max(seqs)
                chunk_seqs = json.dumps(seqs)
                hit: set[int] | None = None
                for table, match in self.plan.texts:
                    # The term's matches within the chunk's seq range, kept when in the chunk, all inside
                    # SQLite (``+rowid``: the chunk's list must not become one index probe per seq).
                    found = {
                        r[0]
                        for r in self.conn.execute(
                            f"SELECT rowid FROM {table} WHERE {table} MATCH ? AND rowid BETWEEN ? AND ?"  # noqa: S608
                            " AND +rowid IN (SELECT value FROM json_each(?))",
                            (match, lo, hi, chunk_seqs),
                        )
                    }
                    hit = found if hit is None else hit & found
                yield rows, [r for r in rows if hit is not None and r[0] in hit]
                if len(rows) < chunk:
                    break
                last = rows[-1]
                marker = _continue_after(last["published_at"], last["seq"])
                chunk = min(chunk * 2, LARGEST_CHUNK)

    def _walked_page(self, offset: int, size: int) -> list[sqlite3.Row]:
        wanted: list[int] = []
        for _rows, kept in self._walk(self.query.after):
            wanted += [r[0] for r in kept]
            if len(wanted) >= offset + size:
                break
        wanted = wanted[offset : offset + size]
        if not wanted:
            return []
        marks = ", ".join("?" for _ in wanted)
        sql = f"SELECT {self.columns} FROM items WHERE seq IN ({marks})"  # noqa: S608
        by_seq = {r[0]: r for r in self.conn.execute(sql, wanted)}
        return [by_seq[s] for s in wanted if s in by_seq]

    def page(self, total: int, matches: int | None) -> list[sqlite3.Row]:
        query = self.query
        offset = 0 if query.after is not None else (query.page - 1) * query.size
        if matches is not None and matches > FEW_MATCHES:
            return self._walked_page(offset, query.size)
        clauses, text_params = self.plan.in_lists()
        source = "items"
        if not self.plan.texts or total > WALK_ORDER_ABOVE:
            # Many matches (or no terms): walk the listing order and keep the matching rows (the first page
            # comes after a few dozen rows) instead of fetching and sorting every match. Named, because
            # without ANALYZE statistics SQLite may pick items_published and sort every row before a cursor.
            source = self.plan.walk_source
        rows: list[sqlite3.Row] = []
        for part, part_params in after_parts(query.after):
            extra = [*clauses, *([part] if part else [])]
            rows += self.conn.execute(
                f"SELECT {self.columns} FROM {source}{self.plan.where(extra)}{_ORDER} LIMIT ? OFFSET ?",  # noqa: S608
                [*self.plan.params, *text_params, *part_params, query.size - len(rows), offset],
            ).fetchall()
            if len(rows) >= query.size:
                break
        return rows


def _continue_after(published: str | None, seq: int) -> list[Any]:
    # The next chunk of a walk: a clause (first) and its parameters, within the same part of after_parts.
    if published is None:
        return ["(published_at IS NULL AND seq < ?)", seq]
    return ["(published_at <= ? AND (published_at < ? OR seq < ?))", published, published, seq]


def run(conn: sqlite3.Connection, plan: Plan, query: ItemQuery, item: Callable[[sqlite3.Row], base.Item]) -> SearchPage:
    """One page of ``query`` with its (capped or estimated) count."""
    searcher = Searcher(conn, plan, query)
    total, capped, estimated, matches = searcher.count()
    rows = searcher.page(total, matches)
    cursor = encode_cursor([rows[-1]["published_at"], rows[-1]["seq"]]) if len(rows) == query.size else None
    return SearchPage(
        results=[item(r) for r in rows], total=total, next=cursor, total_capped=capped, total_estimated=estimated
    )


# Rows per page of ``texts``: one statement each (a walk reads its chunks inside it).
TEXT_PAGE = 1000


def texts(
    conn: sqlite3.Connection, plan: Plan, query: ItemQuery, columns: str, limit: int | None
) -> Iterator[list[Any]]:
    """Pages of ``columns`` (after seq and published_at) of the items of ``query``, newest first, without a
    count: what ``run`` would list page after page, reading only these columns."""
    first = query.model_copy(update={"page": 1, "after": None})
    searcher = Searcher(conn, plan, first, f"seq, published_at, {columns}")
    # How many the terms match decides how a page is read (their match list, or a walk of the listing);
    # no exact count: only whether it passes WALK_ORDER_ABOVE matters.
    total, matches = 0, None
    if plan.texts:
        matches = total = searcher._text_count(FEW_MATCHES + 1)
        if matches <= FEW_MATCHES and plan.filters and searcher._filter_count(limit=matches + 1) <= matches:
            # Fewer items pass the filters (a trial's recent days) than the terms match in the whole store:
            # walk the filters' listing and check each against the match list, instead of seeking every match
            # (old ones too, each a page of its own to read from disk when the cache is cold).
            total = WALK_ORDER_ABOVE + 1
        elif matches <= FEW_MATCHES and plan.filters:
            clauses, params = plan.in_lists()
            total = int(
                conn.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM items{plan.where(clauses)} LIMIT ?)",  # noqa: S608
                    [*plan.params, *params, WALK_ORDER_ABOVE + 1],
                ).fetchone()[0]
            )
    left = limit
    while left is None or left > 0:
        size = TEXT_PAGE if left is None else min(TEXT_PAGE, left)
        searcher.query = searcher.query.model_copy(update={"size": size})
        rows = searcher.page(total, matches)
        if rows:
            yield rows
        if len(rows) < size:
            return
        if left is not None:
            left -= len(rows)
        last = rows[-1]
        searcher.query = searcher.query.model_copy(update={"after": encode_cursor([last[1], last[0]])})


def ids(conn: sqlite3.Connection, plan: Plan, query: ItemQuery, limit: int | None) -> Iterator[list[Any]]:
    """Pages of (seq, published_at) of the items of ``query``, newest first, from the listing index (no row
    read): as ``texts`` lists them, but a common term (more than FEW_MATCHES in the store) is walked once from
    the start, its chunks growing, instead of the walk starting again for each page."""
    searcher = Searcher(conn, plan, query.model_copy(update={"page": 1, "after": None}))
    if not plan.texts or searcher._text_count(FEW_MATCHES + 1) <= FEW_MATCHES:
        for rows in texts(conn, plan, query, "seq", limit):
            yield [(r[0], r[1]) for r in rows]
        return
    left = limit
    for _rows, kept in searcher._walk(None):
        wanted = [(r[0], r[1]) for r in kept][:left]
        if wanted:
            yield wanted
        if left is not None:
            left -= len(wanted)
            if left <= 0:
                return
