"""What this process wrote to Elasticsearch since its last refresh, kept so a candidate lookup needs no refresh.

A search sees a document only after a refresh. A crawl batch's near-duplicate lookup must see the batches this
process stored just before it, and refreshing before the lookup made the node write a small segment per crawl
batch (about a fifth of the node's CPU per crawled document). Instead the documents this process indexed since
its last refresh are held here as written, with the version the cluster gave them, and merged into the
lookup's answer: a hit older than the version held here is replaced by it, a held document the index does not
show yet is added. The answer is the one a refreshed index gives. Partial updates (an event, a match time, band
keys) are not held: their ids and bands are recorded, and a lookup they can change refreshes first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.store.es_layout import LOOKUP_EXCLUDES

# Documents held at most (about 1-3 KB each); past it the next lookup refreshes and the count starts again.
FRESH_CAP = 5_000


@dataclass(frozen=True)
class FreshDoc:
    """A document as this process indexed it: what a candidate lookup reads of it, and its version."""

    source: dict[str, Any]
    version: tuple[int, int]  # (_primary_term, _seq_no) the bulk answered; later writes have larger ones
    bands: frozenset[int]


class FreshWrites:
    """This process's writes since its last refresh (thread-safe)."""

    def __init__(self, cap: int = FRESH_CAP) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        # Written since the last refresh: the next read that must see its own writes refreshes first.
        self.dirty = False
        self._docs: dict[str, FreshDoc] = {}
        self._by_band: dict[int, set[str]] = {}
        # Partial updates: which documents changed, and band keys written, without the documents themselves.
        self._changed_ids: set[str] = set()
        self._changed_bands: set[int] = set()
        self._overflow = False

    def indexed(self, written: Iterable[tuple[str, Mapping[str, Any], tuple[int, int]]]) -> None:
        """Whole documents the cluster acknowledged: (id, document, (primary term, sequence number))."""
        with self._lock:
            for doc_id, doc, version in written:
                self.dirty = True
                if self._overflow:
                    continue
                self._forget(doc_id)
                bands = frozenset(doc.get("lsh") or ())
                source = {k: v for k, v in doc.items() if k not in LOOKUP_EXCLUDES}
                self._docs[doc_id] = FreshDoc(source, version, bands)
                for band in bands:
                    self._by_band.setdefault(band, set()).add(doc_id)
                if len(self._docs) > self.cap:
                    self._overflow = True
                    self._docs.clear()
                    self._by_band.clear()

    def updated(self, updates: Mapping[str, Mapping[str, Any]]) -> None:
        """Partial updates sent: the documents held for those ids are no longer what the index holds."""
        with self._lock:
            self.dirty = True
            for doc_id, fields in updates.items():
                self._changed_ids.add(doc_id)
                self._changed_bands.update(fields.get("lsh") or ())
                held = self._forget(doc_id)
                if held is not None:
                    self._changed_bands.update(held.bands)

    def _forget(self, doc_id: str) -> FreshDoc | None:
        held = self._docs.pop(doc_id, None)
        if held is not None:
            for band in held.bands:
                holders = self._by_band.get(band)
                if holders is not None:
                    holders.discard(doc_id)
                    if not holders:
                        del self._by_band[band]
        return held

    def clear(self) -> bool:
        """Forget everything (a refresh is about to make it searchable); whether anything was written."""
        with self._lock:
            was_dirty = self.dirty
            self.dirty = self._overflow = False
            self._docs.clear()
            self._by_band.clear()
            self._changed_ids.clear()
            self._changed_bands.clear()
        return was_dirty

    def needs_refresh(self, wanted: set[int]) -> bool:
        """Whether a lookup of these bands must refresh first: writes not held here can change its answer."""
        with self._lock:
            return self._overflow or not wanted.isdisjoint(self._changed_bands)

    def shares(self, wanted: set[int]) -> bool:
        """Whether a held document shares one of these bands."""
        with self._lock:
            return any(band in self._by_band for band in wanted)

    def changed(self, ids: Iterable[str]) -> bool:
        """Whether one of these documents was partially updated since the last refresh."""
        with self._lock:
            return any(i in self._changed_ids for i in ids)

    def merge(self, hits: Sequence[Mapping[str, Any]], wanted: set[int]) -> list[dict[str, Any]]:
        """The sources of every document sharing a band with ``wanted``: the search's hits (asked with
        ``seq_no_primary_term``), each replaced by the copy held here when that is newer, plus the held
        documents sharing a band that the index does not show yet."""
        with self._lock:
            extra = {i: self._docs[i] for band in wanted for i in self._by_band.get(band, ())}
            held = {h["_id"]: self._docs[h["_id"]] for h in hits if h["_id"] in self._docs}
        out: list[dict[str, Any]] = []
        for hit in hits:
            mine = held.get(hit["_id"])
            if mine is not None and mine.version > (hit["_primary_term"], hit["_seq_no"]):
                continue  # an older version: the held copy is added below if it still shares a band
            extra.pop(hit["_id"], None)
            out.append(hit["_source"])
        out.extend(doc.source for doc in extra.values())
        return out
