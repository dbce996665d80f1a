"""Upserts on Elasticsearch: new items created, changed ones replaced (keeping when they were first stored,
matched and grouped), unchanged ones skipped.

Whether an item is stored already is read with one ``mget`` per chunk, except for the items the crawl batch's
candidate lookup has just shown to be new: a stored item shares all its band keys with itself, so it is among
its own candidates unless its text changed. Those are written with ``create``, which the cluster refuses
(409) for an id that exists after all; only the refused ones are then read and written as updates. A crawl of
new items makes no read before its bulk write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service import clock
from service.store.base import Item, UpsertResult
from service.store.es_bulk import BulkWriting
from service.store.es_fresh import HeldDoc
from service.store.es_layout import KEPT_ON_UPDATE, document

_MGET_CHUNK = 1000


@dataclass
class _Chunk:
    """One bulk request's worth of an upsert, prepared: the documents to write and what each item is."""

    items: Sequence[Item]
    latest: dict[str, Item]  # the last occurrence of each id
    created: set[str]  # written with ``create`` (the lookup showed them new)
    now: datetime
    kinds: dict[str, str] = field(default_factory=dict)  # id -> new / updated / unchanged
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)


class StagedWrite:
    """An upsert of new items prepared in the crawl's thread and sent by its writer thread (``stage_upsert``)."""

    def __init__(self, store: Upserts, chunks: list[_Chunk], shown: list[tuple[str, HeldDoc]]) -> None:
        self.store = store
        self.chunks = chunks
        self.shown = shown
        # Set by send: every document was written as shown (none refused as stored already, none failed).
        self.exact = False

    def send(self) -> UpsertResult:
        """Write the documents; lookups stop seeing the shown copies once the cluster answered."""
        result = UpsertResult()
        exact = True
        try:
            for chunk in self.chunks:
                written, as_shown = self.store._write(chunk)
                result.merge(written)
                exact = exact and as_shown
        finally:
            self.withdraw()
        self.exact = exact
        return result

    def withdraw(self) -> None:
        """Lookups no longer see this write's documents as written (sent and answered, or never sent)."""
        self.store._fresh.hide(self.shown)


class Upserts(BulkWriting):
    """``upsert`` of :class:`service.store.elasticsearch.ElasticsearchStore`."""

    _next_seq: int
    # Keys of the last candidate lookup that were not among their own candidates: probably never stored.
    _unseen: set[str]

    def _existing(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _MGET_CHUNK):
            chunk = ids[start : start + _MGET_CHUNK]
            with self._call("mget"):
                resp = self._es.mget(
                    index=self.alias,
                    ids=chunk,
                    source_includes=["fingerprint", "lsh", "lsh_done", *KEPT_ON_UPDATE],
                )
            for doc in resp["docs"]:
                self._check_doc(doc, "mget")
                if doc.get("found"):
                    found[doc["_id"]] = doc.get("_source", {})
        return found

    def _not_seen_by_lookup(self, keys: Iterable[str]) -> None:
        """Remember the lookup's keys that were not among their own candidates (for the next upsert)."""
        with self._lock:
            self._unseen = set(keys)

    def upsert(self, items: Sequence[Item]) -> UpsertResult:
        """Insert new items, replace changed ones, skip unchanged ones; refused documents are dead-lettered."""
        with self._lock:
            unseen, self._unseen = self._unseen, set()
        result = UpsertResult()
        size = self.settings.bulk_chunk_size
        for start in range(0, len(items), size):
            result.merge(self._write(self._prepare(items[start : start + size], unseen))[0])
        return result

    def stage_upsert(self, items: Sequence[Item]) -> StagedWrite | None:
        """The upsert of ``items`` made ready to send, its documents shown to this process's candidate lookups
        until it is answered (service.store.es_fresh); None unless the last lookup showed every item new.

        Building the documents needs nothing from the cluster then (each is created, see the module
        docstring), so a crawl builds them while its previous write is in flight, and its next lookup need
        not wait for this write.
        """
        with self._lock:
            if not items or any(i.id not in self._unseen for i in items):
                return None
            unseen, self._unseen = self._unseen, set()
        size = self.settings.bulk_chunk_size
        chunks = [self._prepare(items[start : start + size], unseen) for start in range(0, len(items), size)]
        shown = self._fresh.show((doc_id, doc) for chunk in chunks for doc_id, doc in chunk.docs.items())
        return StagedWrite(self, chunks, shown)

    def _prepare(self, items: Sequence[Item], unseen: set[str]) -> _Chunk:
        """The documents to write for a chunk (the stored ones read first, except those the lookup showed new)."""
        # The last occurrence of an id is what gets stored.
        latest: dict[str, Item] = {}
        for raw in items:
            latest[raw.id] = raw if raw.fingerprint else raw.with_fingerprint()
        created = {i for i in latest if i in unseen}
        existing = self._existing([i for i in latest if i not in created])
        now = clock.now()
        base_seq = self._allot_seq(len(latest))
        chunk = _Chunk(items, latest, created, now)
        for position, item in enumerate(latest.values()):
            chunk.kinds[item.id], doc = self._doc_for(item, existing.get(item.id), now, base_seq + position)
            if doc is not None:
                chunk.docs[item.id] = doc
        return chunk

    def _write(self, chunk: _Chunk) -> tuple[UpsertResult, bool]:
        """Write a prepared chunk; the result, and whether every document was written as prepared."""
        result = UpsertResult()
        latest, kinds, docs, now = chunk.latest, chunk.kinds, dict(chunk.docs), chunk.now
        failed, refused = self._bulk_write(docs, chunk.created)
        if refused:
            # Stored after all (changed beyond its bands, or by another process since the lookup): as above.
            again = self._existing(refused)
            redo: dict[str, dict[str, Any]] = {}
            for doc_id in refused:
                kinds[doc_id], doc = self._doc_for(latest[doc_id], again.get(doc_id), now, docs[doc_id]["stored_seq"])
                if doc is not None:
                    redo[doc_id] = doc
            failed.update(self._bulk_write(redo, ())[0])
            docs.update(redo)
        if failed:
            self._dead_letter(failed, {i: docs[i] for i in failed})
        # Report each input occurrence, as if the items had been upserted one after another, so
        # new + updated + unchanged + dead-lettered always equals the input.
        seen: dict[str, str] = {}
        for raw in chunk.items:
            if raw.id in failed:
                result.dead_lettered.append((raw.id, failed[raw.id]))
                continue
            fingerprint = raw.fingerprint or raw.compute_fingerprint()
            if raw.id not in seen:
                getattr(result, kinds[raw.id]).append(raw.id)
            elif seen[raw.id] == fingerprint:
                result.unchanged.append(raw.id)
            else:
                result.updated.append(raw.id)
            seen[raw.id] = fingerprint
        return result, not refused and not failed

    @staticmethod
    def _doc_for(item: Item, old: dict[str, Any] | None, now: datetime, seq: int) -> tuple[str, dict[str, Any] | None]:
        """What to write for ``item`` given the stored document's kept fields (None: not stored)."""
        if old is not None and old.get("fingerprint") == item.fingerprint:
            return "unchanged", None
        if old is None:
            doc = document(item.model_copy(update={"stored_at": now, "updated_at": now}))
            doc["stored_seq"] = seq
            return "new", doc
        doc = document(item.model_copy(update={"updated_at": now}))
        for name in KEPT_ON_UPDATE:
            doc[name] = old.get(name)
        if not item.lsh:
            # Written without band keys (not through the crawl pipeline): keep the ones it had.
            doc["lsh"] = old.get("lsh") or []
            if old.get("lsh_done"):
                doc["lsh_done"] = True
        return "updated", doc

    def _allot_seq(self, count: int) -> int:
        """The first of ``count`` storage sequence numbers no earlier write of this process used.

        Microseconds x 1000, so writes of other processes interleave by time; never repeated within the
        process even when the clock stands still or a chunk holds more than 1,000 items, because the
        newest-first sort has no other tie-breaker.
        """
        with self._lock:
            start = max(int(clock.now().timestamp() * 1_000_000) * 1000, self._next_seq)
            self._next_seq = start + count
        return start
