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
from datetime import datetime
from typing import Any

from service import clock
from service.store.base import Item, UpsertResult
from service.store.es_bulk import BulkWriting
from service.store.es_layout import KEPT_ON_UPDATE, document

_MGET_CHUNK = 1000


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
            result.merge(self._upsert_chunk(items[start : start + size], unseen))
        return result

    def _upsert_chunk(self, items: Sequence[Item], unseen: set[str]) -> UpsertResult:
        result = UpsertResult()
        # The last occurrence of an id is what gets stored.
        latest: dict[str, Item] = {}
        for raw in items:
            latest[raw.id] = raw if raw.fingerprint else raw.with_fingerprint()
        created = {i for i in latest if i in unseen}
        existing = self._existing([i for i in latest if i not in created])
        now = clock.now()
        base_seq = self._allot_seq(len(latest))
        docs: dict[str, dict[str, Any]] = {}
        kinds: dict[str, str] = {}
        for position, item in enumerate(latest.values()):
            kinds[item.id], doc = self._doc_for(item, existing.get(item.id), now, base_seq + position)
            if doc is not None:
                docs[item.id] = doc
        failed, refused = self._bulk_write(docs, created)
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
        for raw in items:
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
        return result

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
