"""The schema of the SQLite item store: tables, indexes, full-text indexes and the triggers filling them.

Applied on the first connection of a process (every statement is idempotent); a file written by an
older release gets the columns and indexes added since, filled from the rows it holds. The triggers call
``yq_fold`` and ``yq_grams``, which every connection of the store registers (:func:`register_functions`).
"""

from __future__ import annotations

import codecs
import functools
import sqlite3
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from service.masking import mask_text
from service.store.base import search_key

_Int = TypeVar("_Int", np.uint32, np.uint64)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    channel TEXT NOT NULL,
    external_id TEXT,
    order_no TEXT,
    url TEXT,
    title TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    published_at TEXT,
    fetched_at TEXT NOT NULL,
    department TEXT,
    status TEXT,
    reply TEXT,
    replied_at TEXT,
    event_id TEXT,
    fingerprint TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    matched_at TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    title_masked TEXT NOT NULL DEFAULT '',
    content_masked TEXT NOT NULL DEFAULT '',
    -- 1 once the item's LSH band keys are in item_lsh (none for an empty text); NULL: to backfill.
    lsh_done INTEGER,
    indexed INTEGER
);
CREATE INDEX IF NOT EXISTS items_published ON items(published_at);
CREATE INDEX IF NOT EXISTS items_stored ON items(stored_at);
CREATE INDEX IF NOT EXISTS items_source ON items(source);
CREATE INDEX IF NOT EXISTS items_event ON items(event_id);
-- The listing order (newest published first, undated last): page 1 and keyset pages read it in order.
CREATE INDEX IF NOT EXISTS items_newest ON items(published_at IS NULL, published_at DESC, seq DESC);
-- The same order within one department, channel or source: a filtered list reads only its own rows.
CREATE INDEX IF NOT EXISTS items_department_newest
    ON items(department, published_at IS NULL, published_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS items_channel_newest ON items(channel, published_at IS NULL, published_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS items_source_newest ON items(source, published_at IS NULL, published_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS items_unmatched ON items(seq) WHERE matched_at IS NULL;
-- MinHash LSH band keys of each item (repost detection): one row per (band, item), newest item first.
CREATE TABLE IF NOT EXISTS item_lsh (
    band INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (band, seq)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS items_lsh_ad AFTER DELETE ON items BEGIN
    DELETE FROM item_lsh WHERE seq = old.seq;
END;
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    document TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


# Trigram indexes of the text as published and of the masked copy, from before the folded search keys
# (items_search) answered every search: nothing reads them, and they cost ingest time and disk.
_UNUSED = """
DROP TRIGGER IF EXISTS items_ai; DROP TRIGGER IF EXISTS items_ad; DROP TRIGGER IF EXISTS items_au;
DROP TRIGGER IF EXISTS items_masked_ai; DROP TRIGGER IF EXISTS items_masked_ad;
DROP TRIGGER IF EXISTS items_masked_au;
DROP TABLE IF EXISTS items_fts; DROP TABLE IF EXISTS items_fts_masked;
"""


# items.indexed: 1 when the store's writer filled the item's full-text entries with its batch (the insert
# triggers skip the row); NULL for rows inserted otherwise (an earlier release, a script): the triggers index them.
def _add_later_columns(conn: sqlite3.Connection) -> None:
    """Give a store file from an earlier release the plain columns added since (empty for old items)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    if "order_no" not in columns:
        conn.execute("ALTER TABLE items ADD COLUMN order_no TEXT")
    if "indexed" not in columns:
        conn.execute("ALTER TABLE items ADD COLUMN indexed INTEGER")


def _add_masked_copy(conn: sqlite3.Connection) -> None:
    """Give a store file from before the masked copy its columns, filled, and the index over them."""
    # Search for every role but admin runs on the masked copy (a search on the original would be an oracle
    # for the hidden digits); it lives beside the original, indexed by items_search and items_short.
    columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    if "title_masked" in columns:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE items ADD COLUMN title_masked TEXT NOT NULL DEFAULT ''")
        conn.execute("ALTER TABLE items ADD COLUMN content_masked TEXT NOT NULL DEFAULT ''")
        rows = conn.execute("SELECT seq, title, content FROM items").fetchall()
        conn.executemany(
            "UPDATE items SET title_masked = ?, content_masked = ? WHERE seq = ?",
            [(mask_text(r[1]), mask_text(r[2]), r[0]) for r in rows],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _add_lsh_done(conn: sqlite3.Connection) -> None:
    """Upgrade a store file from before band backfill: mark items that have band keys, drop SimHash indexes.

    The SimHash columns of old files stay (SQLite cannot drop them cheaply) but are no longer written or
    indexed; items without band keys are found through ``items_no_lsh`` by ``iter_without_bands``.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    if "lsh_done" not in columns:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("ALTER TABLE items ADD COLUMN lsh_done INTEGER")
            conn.execute("UPDATE items SET lsh_done = 1 WHERE seq IN (SELECT seq FROM item_lsh)")
            for i in range(4):
                conn.execute(f"DROP INDEX IF EXISTS items_band{i}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    conn.execute("CREATE INDEX IF NOT EXISTS items_no_lsh ON items(seq) WHERE lsh_done IS NULL")


# Search keys: title and content folded for case and width (NFKC + casefold, the matcher's rule), so
# 12度 finds １２度 while the items themselves keep the text as published. Its own FTS table, filled by
# triggers (see _LAYOUT_TRIGGERS) through the yq_fold function every connection of this store registers.
_SEARCH_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS items_search USING fts5(
    title, content, title_masked, content_masked, tokenize='trigram'
);
"""


# Items stored before the search keys existed get theirs once.
_SEARCH_BACKFILL = """
INSERT INTO items_search(rowid, title, content, title_masked, content_masked)
SELECT seq, yq_fold(title), yq_fold(content), yq_fold(title_masked), yq_fold(content_masked)
FROM items WHERE seq NOT IN (SELECT rowid FROM items_search)
"""


# One- and two-character terms (排污, 水): the trigram index cannot answer them, so every character and every
# pair of adjacent characters of the folded title and content is a token of its own (yq_grams), in a
# contentless FTS5 table with one column for the original text and one for the masked copy. Tokens are
# separated by spaces only: the tokenizer keeps letters, marks, numbers, punctuation, symbols and
# unassigned code points (emoji newer than its Unicode tables) inside tokens.
_SHORT_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS items_short USING fts5(
    grams, grams_masked, content='', detail='column',
    tokenize="unicode61 remove_diacritics 0 categories 'L* M* N* P* S* Co Cn Cf Cs'"
);
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# The triggers keeping both full-text indexes in step with the items table. The original title and content are
# indexed only when the masked copy differs from them (an item with personal data); most items have none, so
# their text is tokenized once instead of twice. Searches read the original where it is indexed and the masked
# copy, which is then the same text, where it is not (SqliteStore._plan). Rows of store files written before
# this layout keep both texts in the contentless short-term index for good (seq below ``below``): a delete
# there must name the tokens each column holds, or the index's per-column token counts drift.
#
# The store's own writer fills the entries of the rows it inserts itself, a batch per statement (FILL_SEARCH,
# FILL_SHORT), and the insert triggers skip those rows (``indexed``). A trigger runs inside the inserting
# statement's own savepoint, and FTS5 writes its pending entries out as a new index segment at every
# savepoint: filled by the trigger, each item became a segment of its own and the index spent most of a
# crawl's store time merging them again (~1.3 ms CPU per 1,150-character item).
_DIFFERS = "({row}.title_masked IS NOT {row}.title OR {row}.content_masked IS NOT {row}.content)"
_LAYOUT_TRIGGERS = """
DROP TRIGGER IF EXISTS items_search_ai;
DROP TRIGGER IF EXISTS items_search_ad;
DROP TRIGGER IF EXISTS items_search_au;
DROP TRIGGER IF EXISTS items_short_ai;
DROP TRIGGER IF EXISTS items_short_ad;
DROP TRIGGER IF EXISTS items_short_au;
CREATE TRIGGER items_search_ai AFTER INSERT ON items WHEN new.indexed IS NULL BEGIN
    INSERT INTO items_search(rowid, title, content, title_masked, content_masked) VALUES ({search_new});
END;
CREATE TRIGGER items_search_ad AFTER DELETE ON items BEGIN
    DELETE FROM items_search WHERE rowid = old.seq;
END;
CREATE TRIGGER items_search_au AFTER UPDATE OF title, content, title_masked, content_masked ON items BEGIN
    DELETE FROM items_search WHERE rowid = old.seq;
    INSERT INTO items_search(rowid, title, content, title_masked, content_masked) VALUES ({search_new});
END;
CREATE TRIGGER items_short_ai AFTER INSERT ON items WHEN new.indexed IS NULL BEGIN
    INSERT INTO items_short(rowid, grams, grams_masked) VALUES ({short_new});
END;
CREATE TRIGGER items_short_ad AFTER DELETE ON items BEGIN
    INSERT INTO items_short(items_short, rowid, grams, grams_masked) VALUES ('delete', {short_old});
END;
CREATE TRIGGER items_short_au AFTER UPDATE OF title, content, title_masked, content_masked ON items BEGIN
    INSERT INTO items_short(items_short, rowid, grams, grams_masked) VALUES ('delete', {short_old});
    INSERT INTO items_short(rowid, grams, grams_masked) VALUES ({short_new});
END;
"""
LAYOUT = "2"  # store_meta 'index_layout': the original text indexed only where the masked copy differs
# store_meta 'index_triggers': the insert triggers skip rows the writer indexed itself. Kept apart from the
# layout (what the indexes hold, unchanged): an earlier release opening the file keeps these triggers, and the
# rows it inserts (``indexed`` NULL) are indexed by them.
TRIGGERS = "3"


def _search_values(row: str) -> str:
    """The items_search values (rowid first) of the items row ``row`` (new, old, items)."""
    differs = _DIFFERS.format(row=row)
    return (
        f"{row}.seq, CASE WHEN {differs} THEN yq_fold({row}.title) ELSE '' END, "
        f"CASE WHEN {differs} THEN yq_fold({row}.content) ELSE '' END, "
        f"yq_fold({row}.title_masked), yq_fold({row}.content_masked)"
    )


def _short_values(row: str, below: int) -> str:
    """The items_short values (rowid first) of the items row ``row``; rows below ``below`` hold both texts."""
    full = f"({_DIFFERS.format(row=row)} OR {row}.seq < {int(below)})"
    return (
        f"{row}.seq, CASE WHEN {full} THEN yq_grams({row}.title, {row}.content) ELSE '' END, "
        f"yq_grams({row}.title_masked, {row}.content_masked)"
    )


def _layout_triggers(below: int) -> str:
    return _LAYOUT_TRIGGERS.format(
        search_new=_search_values("new"), short_new=_short_values("new", below), short_old=_short_values("old", below)
    )


# What the writer runs after inserting a batch: the entries of the rows after seq ``?``, one statement per
# index (so FTS5 writes one segment per batch). The rows a writer inserts are newer than any row of an
# earlier layout, so ``below`` does not matter for them.
FILL_SEARCH = (
    "INSERT INTO items_search(rowid, title, content, title_masked, content_masked) "  # noqa: S608
    f"SELECT {_search_values('items')} FROM items WHERE seq > ?"
)
FILL_SHORT = (
    "INSERT INTO items_short(rowid, grams, grams_masked) "  # noqa: S608
    f"SELECT {_short_values('items', 0)} FROM items WHERE seq > ?"
)


def _statements(script: str) -> list[str]:
    """The statements of ``script`` one by one (executescript would commit the open transaction first)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def _use_layout(conn: sqlite3.Connection) -> None:
    """Put the index triggers of the current layout in place (once per store file)."""
    query = "SELECT key, value FROM store_meta WHERE key IN ('index_layout', 'short_full_below', 'index_triggers')"
    meta = dict(conn.execute(query).fetchall())
    if meta.get("index_layout") == LAYOUT and meta.get("index_triggers") == TRIGGERS:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        meta = dict(conn.execute(query).fetchall())
        if meta.get("index_layout") != LAYOUT:
            # Every row stored so far holds both texts in the short-term index (earlier triggers, backfills).
            below = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM items").fetchone()[0]
        else:
            below = int(meta["short_full_below"])  # the layout stays: only the triggers change
        if meta.get("index_layout") != LAYOUT or meta.get("index_triggers") != TRIGGERS:
            for statement in _statements(_layout_triggers(below)):
                conn.execute(statement)
            for key, value in (("index_layout", LAYOUT), ("short_full_below", below), ("index_triggers", TRIGGERS)):
                conn.execute("INSERT OR REPLACE INTO store_meta (key, value) VALUES (?, ?)", (key, value))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def short_grams(*texts: str | None) -> str:
    """Every character and every pair of adjacent characters of the folded texts, space-separated.

    A pair holding a space or a control character splits into a lone character, which is a token anyway.
    Computed on code point arrays: the same set of tokens as one Python string per character and pair
    (which cost ~0.4 ms per 1,000-character item), so rows indexed by either are deleted by the other.
    """
    singles: list[npt.NDArray[np.uint32]] = []
    pairs: list[npt.NDArray[np.uint64]] = []
    for text in texts:
        key = search_key(text)
        if not key:
            continue
        points = np.frombuffer(key.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        singles.append(points)
        pairs.append((points[:-1].astype(np.uint64) << np.uint64(32)) | points[1:])
    if not singles:
        return ""
    one = _distinct(np.concatenate(singles))
    two = _distinct(np.concatenate(pairs))
    out = np.full(2 * len(one) + 3 * len(two), _SPACE, dtype=np.uint32)
    out[0 : 2 * len(one) : 2] = one
    tail = out[2 * len(one) :]
    tail[0::3] = (two >> np.uint64(32)).astype(np.uint32)
    tail[1::3] = (two & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return codecs.utf_32_le_decode(out[:-1].tobytes(), "surrogatepass")[0]


_SPACE = ord(" ")


def _distinct(values: npt.NDArray[_Int]) -> npt.NDArray[_Int]:
    """The sorted distinct values, as ``np.unique`` gives them: a sort and one comparison pass, which for an
    item's thousand-odd code points costs a tenth of the hash table numpy 2 builds for ``np.unique``."""
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _add_short_index(conn: sqlite3.Connection) -> None:
    """Give a store file from before the short-term index the index, filled for every stored item."""
    conn.executescript(_SHORT_SCHEMA)
    if conn.execute("SELECT 1 FROM store_meta WHERE key = 'short_index'").fetchone():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not conn.execute("SELECT 1 FROM store_meta WHERE key = 'short_index'").fetchone():
            # Triggers fill it for items inserted from now on; older items get their tokens once, here.
            conn.execute(
                "INSERT INTO items_short(rowid, grams, grams_masked) SELECT seq, yq_grams(title, content), "
                "yq_grams(title_masked, content_masked) FROM items"
            )
            conn.execute("INSERT INTO store_meta (key, value) VALUES ('short_index', '1')")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _backfill_search(conn: sqlite3.Connection, had_search: bool) -> None:
    """Give items stored before the search keys existed theirs: once per file (recorded in store_meta),
    and whenever the index is new. Looking for such items reads every row and the whole index (11 s at
    428,000 items), which used to happen at every start.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    if had_search and conn.execute("SELECT 1 FROM store_meta WHERE key = 'search_index'").fetchone():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SEARCH_BACKFILL)
        conn.execute("INSERT OR IGNORE INTO store_meta (key, value) VALUES ('search_index', '1')")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# The insert trigger asks for the grams of the text and of its masked copy, which is most often the same
# text: the second call is a lookup.
_recent_grams = functools.lru_cache(maxsize=8)(short_grams)


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the triggers and searches call: ``yq_fold`` (search key), ``yq_grams`` (short terms)."""
    conn.create_function("yq_fold", 1, search_key, deterministic=True)
    conn.create_function("yq_grams", 2, _recent_grams, deterministic=True)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the store's schema on ``conn``, or bring a file of an older release up to date."""
    conn.executescript(_SCHEMA)
    conn.executescript(_UNUSED)
    _add_later_columns(conn)
    _add_masked_copy(conn)
    _add_lsh_done(conn)
    had_search = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'items_search'").fetchone() is not None
    conn.executescript(_SEARCH_SCHEMA)
    _backfill_search(conn, had_search)
    _add_short_index(conn)
    _use_layout(conn)
