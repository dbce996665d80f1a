"""Repost detection's candidate lookup on Elasticsearch: the stored items sharing LSH bands with a batch.

A crawl batch asks once for all its items. The lookup is one ``terms`` filter on the band keys of the whole
batch (no scoring, only the fields an Item has), ranked here: per key, the documents sharing the most of its
bands first, the earliest stored among equals. One ``msearch`` of a scored query per key gave the same
answer, but the node paid a search's fixed cost per key: 14 ms of CPU per crawled item, more than indexing
the item. Only when the batch's bands are shared by more documents than the per-key answers could hold does
the lookup fall back to the per-key queries (the cap keeps one request from fetching half the index).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from service.store.base import Item, StoreUnavailable
from service.store.es_fresh import HeldDoc, held
from service.store.es_layout import LOOKUP_EXCLUDES, item_of
from service.store.es_queries import sharing_any_band, sharing_bands
from service.store.es_upsert import Upserts

Bands = Mapping[str, Sequence[int]]
# Keys per combined lookup: 500 items' ~28 bands each stay far below the node's 65,536 terms per query.
_KEYS_PER_QUERY = 500
# Documents one request may return (the node's index.max_result_window).
_MAX_RESULT_WINDOW = 10_000
# Per-key lookups per msearch request (the fallback).
_MSEARCH_CHUNK = 100


class CandidateLookups(Upserts):
    """``lsh_candidates`` of :class:`service.store.elasticsearch.ElasticsearchStore`."""

    def lsh_candidates(self, bands: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        """Stored items sharing a band with each key's bands: one search for the whole batch.

        Ranked by the number of shared bands, then by storage order (the earliest stored first).
        """
        keys = [k for k, v in bands.items() if v]
        if not keys:
            return {}
        # A refresh per crawl batch made the node do several times the work of the writes themselves. Without
        # one, only this process's writes since the last refresh can be missing: the documents it indexed are
        # merged in from memory (service.store.es_fresh); partial updates it made refresh first when they can
        # change the answer (a band written, a candidate found that was changed since).
        if self._fresh.needs_refresh({b for k in keys for b in bands[k]}):
            self._refresh()
        out = self._candidates(keys, bands, limit)
        if self._fresh.changed(i.id for found in out.values() for i in found):
            self._refresh()
            out = self._candidates(keys, bands, limit)
        # A stored item shares every band with itself: a key that is not among its own candidates is an item
        # never stored (or changed beyond its bands); the upsert that follows creates it without a read first.
        self._not_seen_by_lookup(k for k in keys if all(i.id != k for i in out.get(k, ())))
        return out

    def _candidates(self, keys: list[str], bands: Bands, limit: int) -> dict[str, list[Item]]:
        out: dict[str, list[Item]] = {}
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[start : start + _KEYS_PER_QUERY]
            found = self._combined(chunk, bands, limit)
            if found is None:
                # The per-key queries read only what the index shows: make this process's writes part of it
                # (a write in flight first answered).
                wanted = {b for k in chunk for b in bands[k]}
                self._fresh.wait_unshown(wanted)
                if self._fresh.shares(wanted):
                    self._refresh()
                found = self._per_key(chunk, bands, limit)
            out.update(found)
        return out

    def _combined(self, keys: list[str], bands: Bands, limit: int) -> dict[str, list[Item]] | None:
        """Every document sharing a band with the keys, in one request, ranked per key here; None when
        there are more of them than the per-key answers could hold (then the per-key queries decide)."""
        wanted_set = {b for k in keys for b in bands[k]}
        cap = min(limit * len(keys), _MAX_RESULT_WINDOW - 1)
        # Ids and versions only (doc values: no stored field is read); the documents themselves are mostly
        # held from this process's own writes and earlier lookups (service.store.es_fresh).
        with self._call("search"):
            resp = self._es.search(
                index=self.alias,
                query={"bool": {"filter": [sharing_any_band(sorted(wanted_set))]}},
                sort=["_doc"],
                size=cap + 1,
                track_total_hits=False,
                seq_no_primary_term=True,
                source=False,
                stored_fields="_none_",
                docvalue_fields=[{"field": "id"}],
            )
        hits = resp["hits"]["hits"]
        if len(hits) > cap:
            return None
        docs, missing = self._fresh.resolve(
            [(h["fields"]["id"][0], (h["_primary_term"], h["_seq_no"])) for h in hits], wanted_set
        )
        if missing:
            read = self._read_held(missing)
            self._fresh.read(read)
            docs += [doc for _, doc in read]
        # band -> positions of the documents holding it (each counted once per band, as a term query does).
        holders: dict[int, list[int]] = {}
        order: list[tuple[bool, int]] = []
        for position, doc in enumerate(docs):
            for band in wanted_set.intersection(doc.bands):
                holders.setdefault(band, []).append(position)
            seq = doc.source.get("stored_seq")
            # As the per-key query sorted: stored_seq ascending, documents without one last.
            order.append((seq is None, seq or 0))
        out: dict[str, list[Item]] = {}
        for key in keys:
            # Counted in C from one chain of the holders of its bands (an update per band cost more than the rest).
            shared = Counter(chain.from_iterable(holders.get(band, ()) for band in set(bands[key])))
            if shared:
                best = sorted(shared, key=lambda p: (-shared[p], order[p]))[:limit]
                out[key] = [docs[p].item() for p in best]
        return out

    def _read_held(self, ids: list[str]) -> list[tuple[str, HeldDoc]]:
        """The documents of these ids as the index shows them (what the lookup reads of each)."""
        with self._call("search"):
            resp = self._es.search(
                index=self.alias,
                query={"ids": {"values": ids}},
                size=len(ids),
                track_total_hits=False,
                seq_no_primary_term=True,
                source_excludes=list(LOOKUP_EXCLUDES),
            )
        return [(h["_id"], held(h["_source"], (h["_primary_term"], h["_seq_no"]))) for h in resp["hits"]["hits"]]

    def _per_key(self, keys: list[str], bands: Bands, limit: int) -> dict[str, list[Item]]:
        """One scored query per key (the score is the number of shared bands), in msearch requests."""
        out: dict[str, list[Item]] = {}
        for start in range(0, len(keys), _MSEARCH_CHUNK):
            chunk = keys[start : start + _MSEARCH_CHUNK]
            searches: list[dict[str, Any]] = []
            for key in chunk:
                body = {**sharing_bands(bands[key], limit), "_source": {"excludes": list(LOOKUP_EXCLUDES)}}
                searches += [{"index": self.alias}, body]
            with self._call("msearch"):
                resp = self._es.msearch(searches=searches)
            for key, answer in zip(chunk, resp["responses"], strict=True):
                if "error" in answer:
                    error = answer["error"]
                    if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
                        raise StoreUnavailable(
                            f"Elasticsearch at {', '.join(self.hosts)} has no index {self.alias}: run `yuqing init`"
                        )
                    raise StoreUnavailable(f"Elasticsearch candidate lookup failed: {error}")
                hits = answer["hits"]["hits"]
                if hits:
                    out[key] = [item_of(h["_source"]) for h in hits]
        return out
