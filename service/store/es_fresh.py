"""What this process wrote to (or read from) Elasticsearch lately, kept so a candidate lookup needs no refresh
and reads few documents.

A search sees a document only after a refresh. A crawl batch's near-duplicate lookup must see the batches this
process stored just before it, and refreshing before the lookup made the node write a small segment per crawl
batch (about a fifth of the node's CPU per crawled document). Instead the documents this process indexed since
its last refresh are merged into the lookup's answer: a hit older than the version held here is replaced by it,
a held document the index does not show yet is added. The answer is the one a refreshed index gives.

The lookup's candidates are mostly documents this process wrote or read a few batches before: the search asks
only for their ids and versions (no stored fields read), and only the documents not held here in that version
are read. Partial updates (an event, a match time, band keys) are not held: their ids and bands are recorded,
and a lookup they can change refreshes first.

A crawl's write of new items may still be in flight when its next batch is looked up (crawlers/pipelines.py):
the documents of such a write are shown to the lookups from before the bulk request is sent until it is
answered, as the documents it writes (a lookup sees what it would see after the write). A write that does not
store exactly what it showed tells its crawl, which looks the next batch up again after it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.store.base import Item
from service.store.es_layout import LOOKUP_EXCLUDES, item_of

# Documents held at most (about 1-3 KB each). Past it the oldest are forgotten; when one of them was written
# since the last refresh, the next lookup refreshes first.
FRESH_CAP = 5_000

Version = tuple[int, int]  # (_primary_term, _seq_no): a later write of a document has a larger one
# The version of a shown document (not written yet: the cluster has not given it one).
_UNWRITTEN: Version = (-1, -1)


@dataclass
class HeldDoc:
    """A document as this process wrote or read it: what a candidate lookup reads of it, and its version."""

    source: dict[str, Any]
    version: Version
    bands: frozenset[int]
    _item: Item | None = field(default=None, repr=False)

    def item(self) -> Item:
        """The item of the document (made once; callers only read it)."""
        if self._item is None:
            self._item = item_of(self.source)
        return self._item


def held(source: Mapping[str, Any], version: Version) -> HeldDoc:
    """A document as the lookup keeps it: without the texts' masked copies and search keys."""
    trimmed = {k: v for k, v in source.items() if k not in LOOKUP_EXCLUDES}
    return HeldDoc(trimmed, version, frozenset(trimmed.get("lsh") or ()))


class FreshWrites:
    """Documents this process wrote or read lately, and which of them it wrote since its last refresh."""

    def __init__(self, cap: int = FRESH_CAP) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        # Written since the last refresh: the next read that must see its own writes refreshes first.
        self.dirty = False
        self._docs: OrderedDict[str, HeldDoc] = OrderedDict()  # least recently used first
        # Indexed since the last refresh (held in _docs), by band.
        self._fresh: set[str] = set()
        self._by_band: dict[int, set[str]] = {}
        # Partial updates: which documents changed, and band keys written, without the documents themselves.
        self._changed_ids: set[str] = set()
        self._changed_bands: set[int] = set()
        self._overflow = False
        # Documents of writes in flight, shown to lookups as written (see ``show``), and by band.
        self._shown: dict[str, HeldDoc] = {}
        self._shown_by_band: dict[int, set[str]] = {}
        self._hidden = threading.Condition(self._lock)

    def show(self, docs: Iterable[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, HeldDoc]]:
        """Documents of a write about to be sent: lookups see them as written until ``hide`` (a later write's
        copy of an id replaces an earlier one's)."""
        made = [(doc_id, held(doc, _UNWRITTEN)) for doc_id, doc in docs]
        with self._lock:
            for doc_id, doc in made:
                self._unshow(doc_id)
                self._shown[doc_id] = doc
                for band in doc.bands:
                    self._shown_by_band.setdefault(band, set()).add(doc_id)
        return made

    def hide(self, shown: Iterable[tuple[str, HeldDoc]]) -> None:
        """The write of these shown documents is answered (its written documents are ``indexed``) or given up."""
        with self._lock:
            for doc_id, doc in shown:
                if self._shown.get(doc_id) is doc:
                    self._unshow(doc_id)
            self._hidden.notify_all()

    def _unshow(self, doc_id: str) -> None:
        doc = self._shown.pop(doc_id, None)
        for band in doc.bands if doc is not None else ():
            holders = self._shown_by_band.get(band)
            if holders is not None:
                holders.discard(doc_id)
                if not holders:
                    del self._shown_by_band[band]

    def wait_unshown(self, wanted: set[int]) -> None:
        """Until no document shown shares one of these bands: for reads that only see the index. Only writes
        already handed to a writer are shown when a lookup runs (crawlers/pipelines.py), so this ends."""
        with self._hidden:
            self._hidden.wait_for(lambda: wanted.isdisjoint(self._shown_by_band))

    def indexed(self, written: Iterable[tuple[str, Mapping[str, Any], Version]]) -> None:
        """Whole documents the cluster acknowledged: (id, document, version)."""
        docs = [(doc_id, held(doc, version)) for doc_id, doc, version in written]
        with self._lock:
            for doc_id, doc in docs:
                self.dirty = True
                self._forget(doc_id)
                self._docs[doc_id] = doc
                self._fresh.add(doc_id)
                for band in doc.bands:
                    self._by_band.setdefault(band, set()).add(doc_id)
            self._trim()

    def read(self, docs: Iterable[tuple[str, HeldDoc]]) -> None:
        """Documents a lookup read from the index, kept for the next lookups (unless a newer copy is held)."""
        with self._lock:
            for doc_id, doc in docs:
                mine = self._docs.get(doc_id)
                if mine is None or mine.version < doc.version:
                    if doc_id in self._fresh:
                        continue  # written here since the refresh: keep it with its bands index
                    self._docs[doc_id] = doc
                self._docs.move_to_end(doc_id)
            self._trim()

    def _trim(self) -> None:
        while len(self._docs) > self.cap:
            doc_id, _ = self._docs.popitem(last=False)
            if doc_id in self._fresh:
                self._overflow = True
                self._unindex(doc_id)

    def updated(self, updates: Mapping[str, Mapping[str, Any]]) -> None:
        """Partial updates sent: the documents held for those ids are no longer what the index holds."""
        with self._lock:
            self.dirty = True
            for doc_id, fields in updates.items():
                self._changed_ids.add(doc_id)
                self._changed_bands.update(fields.get("lsh") or ())
                gone = self._forget(doc_id)
                if gone is not None:
                    self._changed_bands.update(gone.bands)

    def _forget(self, doc_id: str) -> HeldDoc | None:
        gone = self._docs.pop(doc_id, None)
        if doc_id in self._fresh:
            self._unindex(doc_id)
        return gone

    def _unindex(self, doc_id: str) -> None:
        self._fresh.discard(doc_id)
        for holders in self._by_band.values():
            holders.discard(doc_id)

    def clear(self) -> bool:
        """A refresh is about to make this process's writes searchable; whether anything was written.
        The documents stay held (with their versions) for the lookups' reads."""
        with self._lock:
            was_dirty = self.dirty
            self.dirty = self._overflow = False
            self._fresh.clear()
            self._by_band.clear()
            self._changed_ids.clear()
            self._changed_bands.clear()
        return was_dirty

    def needs_refresh(self, wanted: set[int]) -> bool:
        """Whether a lookup of these bands must refresh first: writes not held here can change its answer."""
        with self._lock:
            return self._overflow or not wanted.isdisjoint(self._changed_bands)

    def shares(self, wanted: set[int]) -> bool:
        """Whether a document written since the last refresh shares one of these bands."""
        with self._lock:
            return any(self._by_band.get(band) for band in wanted)

    def changed(self, ids: Iterable[str]) -> bool:
        """Whether one of these documents was partially updated since the last refresh."""
        with self._lock:
            return any(i in self._changed_ids for i in ids)

    def resolve(self, hits: list[tuple[str, Version]], wanted: set[int]) -> tuple[list[HeldDoc], list[str]]:
        """The held documents for a search's (id, version) hits sharing a band with ``wanted``, plus those
        written since the last refresh that the index does not show yet and those of writes in flight; and the
        ids to read from the index (not held, or held in an older version)."""
        out: list[HeldDoc] = []
        missing: list[str] = []
        with self._lock:
            extra = {i: self._docs[i] for band in wanted for i in self._by_band.get(band, ())}
            # A write in flight: its document is what the index holds once it is answered.
            extra.update((i, self._shown[i]) for band in wanted for i in self._shown_by_band.get(band, ()))
            for doc_id, version in hits:
                if doc_id in self._shown:
                    continue  # the shown copy, already among ``extra`` when it shares a band
                mine = self._docs.get(doc_id)
                if mine is None or mine.version < version:
                    missing.append(doc_id)
                    extra.pop(doc_id, None)
                    continue
                self._docs.move_to_end(doc_id)
                if mine.version > version:
                    continue  # the index shows an older version: the held copy is added if it shares a band
                extra.pop(doc_id, None)
                out.append(mine)
        out.extend(extra.values())
        return out, missing
