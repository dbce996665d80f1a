"""The item store interface. Spiders, pipelines and the service talk to this, never to a backend."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field, field_validator

from service.clock import ensure_aware
from service.field_labels import field_label
from service.folding import fold_term
from service.vocabulary import Channel

# Fields whose change makes a re-crawled item an update; everything else (fetched_at…) is bookkeeping.
CONTENT_FIELDS = (
    "title",
    "content",
    "url",
    "published_at",
    "department",
    "status",
    "reply",
    "replied_at",
)


# The store's triggers fold the same title and content for each of its indexes: the second fold is a lookup.
@functools.lru_cache(maxsize=64)
def search_key(text: str | None) -> str:
    """The folded form of a text for search (case and width: NFKC + casefold, the rule matching uses).

    Items keep their text as published; both backends index and query these keys, so 12度 finds １２度.
    """
    return fold_term(text) if text else ""


def item_id(source: str, external_id: str | None = None, url: str | None = None) -> str:
    """Stable item id: source + external id, else source + canonical URL. Same input, same id, always."""
    if external_id:
        key = f"{source}\x1fext\x1f{external_id.strip()}"
    elif url:
        key = f"{source}\x1furl\x1f{url.strip()}"
    else:
        raise ValueError("an item needs an external_id or a url to get a stable id")
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:24]  # noqa: S324 - an id, not a secret


class Item(BaseModel):
    """One work order, letter, article or post, as stored."""

    id: str
    source: str
    channel: Channel
    external_id: str | None = None
    # The source's own number for the record as people quote it (12345 工单号 GD…, 信件编号), when the
    # source configures ``fields.order_no``; external_id may be a technical key instead.
    order_no: str | None = None
    url: str | None = None
    title: str = ""
    content: str = ""
    published_at: datetime | None = None
    fetched_at: datetime
    department: str | None = None
    status: str | None = None
    reply: str | None = None
    replied_at: datetime | None = None
    event_id: str | None = None
    fingerprint: str = ""
    # MinHash LSH band keys for repost detection (service/items/duplicates.py). Written to the store's
    # band index; stores do not read them back (an item read from a store has an empty list).
    lsh: list[int] = Field(default_factory=list)
    # Set by the store: when the item was first stored (the discovery time), last changed, matched.
    stored_at: datetime | None = None
    updated_at: datetime | None = None
    matched_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("published_at", "fetched_at", "replied_at", "stored_at", "updated_at", "matched_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return ensure_aware(value) if value is not None else None

    def compute_fingerprint(self) -> str:
        """Hash of the content fields: equal fingerprints mean a re-crawl changed nothing."""
        h = hashlib.sha256()
        for name in CONTENT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            h.update(f"{name}\x1f{value if value is not None else ''}\x1e".encode())
        if self.order_no:
            # Only when set: items stored before the field existed keep their fingerprints (no mass update).
            h.update(f"order_no\x1f{self.order_no}\x1e".encode())
        return h.hexdigest()

    def with_fingerprint(self) -> Item:
        return self.model_copy(update={"fingerprint": self.compute_fingerprint()})


class ItemQuery(BaseModel):
    """Filters of the search API. ``q`` holds whitespace-separated terms, each an exact phrase, all required."""

    q: str | None = None
    channel: Channel | None = None
    source: str | None = None
    department: str | None = None
    event_id: str | None = None
    date_from: datetime | None = None  # on published_at, inclusive
    date_to: datetime | None = None  # on published_at, exclusive
    page: int = Field(default=1, ge=1)
    size: int = Field(default=20, ge=1, le=500)
    # Keyset paging: the ``next`` cursor of the previous page (``page`` is then ignored). Deep pages
    # cost what page 1 costs, on SQLite (no OFFSET scan) and on Elasticsearch (search_after, no window).
    after: str | None = None
    # Match ``q`` against the masked title and content (what every role but admin sees), never the original.
    masked: bool = False

    def terms(self) -> list[str]:
        """The phrases of ``q``: split on whitespace; a double-quoted part keeps its spaces."""
        if not self.q:
            return []
        out: list[str] = []
        buf = ""
        quoted = False
        for ch in self.q:
            if ch == '"':
                if quoted and buf:
                    out.append(buf)
                    buf = ""
                quoted = not quoted
            elif ch.isspace() and not quoted:
                if buf:
                    out.append(buf)
                buf = ""
            else:
                buf += ch
        if buf.strip():
            out.append(buf.strip())
        return out

    def unsearchable(self) -> str | None:
        """Why ``q`` cannot be searched, or None. A ``q`` with no term (only quotes and spaces) would
        match every item, and one whose terms are all punctuation has nothing Elasticsearch's analyzer
        keeps (it matched everything or nothing there, while SQLite looked the marks up): both are refused.
        A punctuation term beside words (``' OR 1=1 --``) stays a literal term of the search."""
        if self.q is None or not self.q.strip():
            return None
        terms = self.terms()
        if not terms:
            return "只有引号或空格，没有要检索的文字"
        if not any(ch.isalnum() for term in terms for ch in term):
            return f"“{self.q.strip()}”只有标点或空格，没有要检索的文字"
        return None


@dataclass
class UpsertResult:
    """What one bulk upsert did; ``new + updated + unchanged + dead_lettered + spooled == input``."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dead_lettered: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    # Written to the disk spool because the backend was unreachable; replayed when it returns.
    spooled: list[str] = field(default_factory=list)

    def merge(self, other: UpsertResult) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.dead_lettered += other.dead_lettered
        self.spooled += other.spooled

    @property
    def stored(self) -> int:
        return len(self.new) + len(self.updated)


@dataclass
class SearchPage:
    results: list[Item]
    total: int
    # Cursor for the page after this one (pass as ItemQuery.after); None on the last page.
    next: str | None = None
    # True when ``total`` is a floor: counting stops at COUNT_CAP matches (an exact count of a million
    # rows costs seconds on SQLite; "more than 10,000" is what a person reads anyway).
    total_capped: bool = False
    # True when ``total`` is estimated from a sample instead of counted (SQLite: a very common term within a
    # filter, e.g. 问题 in one department at a million items; counting it exactly reads every match).
    total_estimated: bool = False


COUNT_CAP = 10_000

# One item as a rule trial reads it: id, source, publication time, title, content (the masked copy when the
# query asks for it). A plain tuple, not an Item: trials read thousands, and only these fields.
TextRow = tuple[str, str, datetime | None, str, str]
# One item as a rule trial counts it without its text: the store's handle of it (its id on Elasticsearch, its
# storage sequence on SQLite, read from the listing index without touching the row) and its place in the
# listing (the backend's own sort values; sorting keys in reverse gives the listing order, newest first).
IdRow = tuple[Any, tuple[Any, ...]]


@dataclass
class DeadLetter:
    item_id: str
    reason: str
    document: dict[str, Any]
    at: datetime


def encode_cursor(values: list[Any]) -> str:
    """An opaque, URL-safe cursor holding a row's sort values."""
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The sort values of ``cursor``; BadCursor when it is not one of ours."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadCursor(BAD_CURSOR) from exc
    if not isinstance(values, list) or len(values) != length:
        raise BadCursor(BAD_CURSOR)
    return values


class BadCursor(ValueError):
    """An ``after`` cursor that this store did not issue (the API answers 400)."""


BAD_CURSOR = f"{field_label('after')}不是有效的翻页游标，请从第一页重新翻页"


class PageTooDeep(ValueError):
    """The page asked for lies beyond what the store pages to (Elasticsearch: the first 10,000 results).

    The API answers 400 with this message instead of failing with 500.
    """


class StoreUnavailable(Exception):
    """The backend cannot be reached (connection refused, timeout, cluster red)."""

    # What a request that needed the store is answered (503); the backend's own reason goes to the log.
    message = "条目存储（检索库）暂不可用，请稍后再试"


@runtime_checkable
class Store(Protocol):
    """Where items live. Both backends pass tests/store/test_store_contract.py."""

    backend: str

    def init(self) -> None:
        """Create tables / index templates; idempotent. StoreUnavailable if unreachable."""

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"down", ...detail}``; never raises."""

    def upsert(self, items: Sequence[Item]) -> UpsertResult:
        """Insert new items, update changed ones (same id, new fingerprint), skip unchanged ones.

        Keeps ``stored_at`` and ``matched_at`` of an existing item; sets ``stored_at``/``updated_at``
        from the clock. Documents the backend can never accept go to the dead-letter store.
        """

    def get(self, item_id: str) -> Item | None: ...

    def get_many(self, item_ids: Sequence[str]) -> list[Item]:
        """The items that exist, in the order asked."""

    def search(self, query: ItemQuery) -> SearchPage:
        """Filtered search, newest published first; ``q`` terms are exact phrases (CJK too)."""

    def iter_texts(self, query: ItemQuery, limit: int | None = None) -> Iterator[list[TextRow]]:
        """The items of ``query`` (its filters and terms; page, size and after ignored) as :data:`TextRow`,
        newest published first, a page at a time, at most ``limit`` of them: the masked copy when
        ``query.masked``. No count, and only these fields are read (rule trials read thousands of items)."""

    def iter_ids(self, query: ItemQuery, limit: int | None = None) -> Iterator[list[IdRow]]:
        """What :meth:`iter_texts` lists, as :data:`IdRow` (handles and listing keys): no text is read, so a
        rule trial counts thousands of items holding a term at the cost of their handles."""

    def texts_of(self, handles: Sequence[Any], masked: bool) -> dict[Any, TextRow]:
        """The :data:`TextRow` of the items of these handles (from :meth:`iter_ids`) that still exist, by handle
        (the masked copy when ``masked``)."""

    def finds_exactly(self, text: str) -> bool:
        """Whether a ``q`` phrase ``text`` finds exactly the items whose folded title or content holds it as a
        substring (no more: Elasticsearch's phrase of two Han characters also finds them apart across a
        comma). A rule trial then counts from the search alone which items hold the term."""

    def finds_within_words(self, text: str) -> bool:
        """Whether a ``q`` phrase ``text`` is found wherever it occurs as a substring (inside words too).

        Rule trials use the search as a prefilter only for such terms.
        """

    def iter_unmatched(self, batch_size: int = 500) -> Iterator[list[Item]]:
        """Items never matched, oldest stored first, in batches."""

    def mark_matched(self, item_ids: Sequence[str]) -> None:
        """Record that these items were matched (sets matched_at from the clock)."""

    def set_event(self, item_ids: Sequence[str], event_id: str) -> None:
        """Put items into one near-duplicate event."""

    def lsh_candidates(self, bands: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        """For many items at once (key -> its LSH band keys): stored items sharing at least one band.

        Per key at most ``limit`` items, those sharing the most bands first. Keys without candidates
        are absent from the answer. An item stored under a key itself is among its candidates.
        """

    def iter_without_bands(self, batch_size: int = 500) -> Iterator[list[Item]]:
        """Items whose LSH band keys were never written (stored before the band index existed, or not
        through the crawl pipeline), oldest stored first, in batches."""

    def set_bands(self, bands: Mapping[str, Sequence[int]]) -> None:
        """Write the LSH band keys of stored items (item id -> keys), replacing any they had.

        An empty list records that the item has none (an empty text); ids never stored are ignored.
        """

    def count(self, query: ItemQuery | None = None) -> int: ...

    def day_counts(self, start: datetime, days: int) -> list[int]:
        """Items first stored in each of ``days`` consecutive 24-hour periods from ``start`` (the trend chart)."""
        ...

    def counts(self) -> dict[str, Any]:
        """``{"total": N, "by_channel": {...}, "by_source": {...}, "unmatched": N}``."""

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def close(self) -> None: ...


def to_signed64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= (1 << 63) else value
