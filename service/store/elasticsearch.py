"""The item store at scale: Elasticsearch 8 through elasticsearch-py, without scripts, pipelines or ILM.

The index layout and the documents are in :mod:`service.store.es_layout`, the request bodies of the
searches in :mod:`service.store.es_queries`, the cluster calls and bulk writes (retries, dead letters)
in :mod:`service.store.es_bulk`; this module is the Store itself: upserts, reads and searches.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from service import clock
from service.clock import ensure_aware
from service.masking import mask_text
from service.settings import ElasticsearchSettings
from service.store import es_json
from service.store.base import (
    BAD_CURSOR,
    BadCursor,
    DeadLetter,
    IdRow,
    Item,
    ItemQuery,
    PageTooDeep,
    SearchPage,
    TextRow,
    decode_cursor,
    encode_cursor,
)
from service.store.es_backfill import Backfills
from service.store.es_candidates import CandidateLookups
from service.store.es_fresh import FreshWrites
from service.store.es_layout import (
    DEAD_LETTER_MAPPINGS,
    index_settings,
    item_index_settings,
    item_mappings,
    item_of,
    template_mappings,
)
from service.store.es_migrate import sort_items_indices
from service.store.es_queries import NEVER_MATCHED, NEWEST_FIRST, OLDEST_STORED_FIRST, item_query
from service.store.es_windows import WindowedPages

_MAX_RESULT_WINDOW = 10_000
_MGET_CHUNK = 1000
# Documents per page of iter_texts (a rule trial reads up to 10,000).
_TEXT_PAGE = 1000
# Ids per page of iter_ids (doc values only: cheap for the node), the first page smaller. A page is at most the
# node's result window (10,000): the holders of a term within a trial's window (at most 10,000 items) are one
# request, not a page of 5,000 and a second for the last few (a round trip costs more than the ids under load).
_ID_PAGE_FIRST, _ID_PAGE = 500, _MAX_RESULT_WINDOW
# The sort value of a document without published_at (missing: _last in a descending sort on a date).
_NO_DATE = -(2**63)


def _text_row(source: dict[str, Any], masked: bool) -> TextRow:
    if masked:
        title, content = source.get("title_masked"), source.get("content_masked")
        if title is None or content is None:  # a document without the masked copy (see iter_texts)
            title, content = mask_text(source.get("title") or ""), mask_text(source.get("content") or "")
    else:
        title, content = source.get("title") or "", source.get("content") or ""
    published = source.get("published_at")
    when = ensure_aware(datetime.fromisoformat(published)) if published else None
    return source["id"], source.get("source") or "", when, title, content


def _safe_host(url: str) -> str:
    """A host URL fit for messages and health output: credentials in it are removed."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class ElasticsearchStore(Backfills, CandidateLookups, WindowedPages):
    """Items in an Elasticsearch cluster; see service.store.es_layout for the index layout."""

    backend = "elasticsearch"
    # A bulk write mostly waits for the cluster: the crawl pipeline prepares and looks up its next batch
    # meanwhile (crawlers/store_writes.py); the lookups see the documents of a write of new items in
    # flight (stage_upsert), and wait for any other write.
    overlaps_writes = True

    def __init__(self, settings: ElasticsearchSettings) -> None:
        self.settings = settings
        prefix = settings.index_prefix
        self.alias = f"{prefix}-items"
        self.template = f"{prefix}-items"
        self.first_index = f"{prefix}-items-000001"
        self.deadletter_index = f"{prefix}-deadletter"
        self.hosts = [_safe_host(h) for h in settings.hosts]
        self.retried = 0
        self._fresh = FreshWrites()
        self._keys_complete = None
        self._keys_checked = 0.0
        self._next_seq = 0
        self._unseen: set[str] = set()
        self._spread = None
        self._lock = threading.Lock()
        self._es = self._client()

    def _client(self) -> Elasticsearch:
        s = self.settings
        kwargs: dict[str, Any] = {
            "request_timeout": s.request_timeout,
            # 429 is retried by this store with backoff; the transport would retry it at once.
            "retry_on_status": (502, 503, 504),
            "max_retries": 2,
            # Bulk bodies hold every item's text several times over: encoded by orjson (service.store.es_json).
            "serializers": es_json.serializers(),
        }
        if s.username:
            kwargs["basic_auth"] = (s.username, s.password.get_secret_value() if s.password else "")
        if s.api_key:
            kwargs["api_key"] = s.api_key.get_secret_value()
        if s.ca_certs:
            kwargs["ca_certs"] = s.ca_certs
        kwargs["verify_certs"] = s.verify_certs
        return Elasticsearch(s.hosts, **kwargs)

    def init(self) -> None:
        """Create or update the index template, the first index with its alias, the dead-letter index."""
        es = self._es
        with self._call("init"):
            es.indices.put_index_template(
                name=self.template,
                index_patterns=[f"{self.alias}-*"],
                template={
                    "settings": item_index_settings(self.settings),
                    "mappings": template_mappings(self.settings.analyzer),
                },
                priority=100,
                meta={"managed_by": "yuqing"},
            )
            if not es.indices.exists_alias(name=self.alias):
                try:
                    es.indices.create(index=self.first_index, aliases={self.alias: {"is_write_index": True}})
                except ApiError as exc:
                    if exc.error != "resource_already_exists_exception":
                        raise
            else:
                # New fields of a newer release reach the existing index; a conflicting change fails here.
                es.indices.put_mapping(index=self.alias, **item_mappings(self.settings.analyzer))
                self._backfill_derived()
                # An index of a release before index sorting is copied into one stored in the listing order.
                sort_items_indices(es, self.alias)
            if not es.indices.exists(index=self.deadletter_index):
                try:
                    es.indices.create(
                        index=self.deadletter_index,
                        settings=index_settings(self.settings),
                        mappings=DEAD_LETTER_MAPPINGS,
                    )
                except ApiError as exc:
                    if exc.error != "resource_already_exists_exception":
                        raise
            es.cluster.health(index=self.alias, wait_for_status="yellow", timeout="30s")

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"down", "cluster_status": ...}``; never raises."""
        base: dict[str, Any] = {"backend": self.backend, "hosts": self.hosts}
        try:
            resp = self._es.options(request_timeout=min(self.settings.request_timeout, 5.0)).cluster.health()
        except Exception as exc:  # health must answer whatever went wrong
            message = getattr(exc, "message", None) or str(exc)
            return {**base, "status": "down", "error": f"{type(exc).__name__}: {message}"}
        status = resp.get("status")
        return {
            **base,
            "status": "ok" if status in ("green", "yellow") else "down",
            "cluster_status": status,
            "cluster_name": resp.get("cluster_name"),
        }

    def close(self) -> None:
        """Release the client's connections."""
        self._es.close()

    # -- writes --------------------------------------------------------------------------------
    def mark_matched(self, item_ids: Sequence[str]) -> None:
        """Set matched_at on items not matched before; the first match time is kept."""
        if not item_ids:
            return
        # No scripts in this distribution: read which are still unmatched, then update those.
        current = self._existing(list(dict.fromkeys(item_ids)))
        now = clock.now().isoformat()
        todo = {i: {"matched_at": now} for i, src in current.items() if not src.get("matched_at")}
        if todo:
            self._bulk_update(todo)

    def set_event(self, item_ids: Sequence[str], event_id: str) -> None:
        """Put items into one near-duplicate event."""
        if item_ids:
            self._bulk_update({i: {"event_id": event_id} for i in dict.fromkeys(item_ids)})

    # -- reads ---------------------------------------------------------------------------------
    def get(self, item_id: str) -> Item | None:
        """The item with this id, or None."""
        try:
            with self._call("get"):
                resp = self._es.get(index=self.alias, id=item_id)
        except NotFoundError:
            return None
        return item_of(resp["_source"])

    def get_many(self, item_ids: Sequence[str]) -> list[Item]:
        """The items that exist, in the order asked."""
        ids = list(item_ids)
        found: dict[str, Item] = {}
        for start in range(0, len(ids), _MGET_CHUNK):
            with self._call("mget"):
                resp = self._es.mget(index=self.alias, ids=ids[start : start + _MGET_CHUNK])
            for doc in resp["docs"]:
                self._check_doc(doc, "mget")
                if doc.get("found"):
                    found[doc["_id"]] = item_of(doc["_source"])
        return [found[i] for i in ids if i in found]

    def finds_within_words(self, text: str) -> bool:
        # The standard analyzer makes each Han character a token, so a phrase of them is found anywhere;
        # Latin letters and digits form whole-word tokens (00000012 is not found inside 13800000012).
        return bool(text) and all(unicodedata.name(ch, "").startswith("CJK UNIFIED IDEOGRAPH") for ch in text)

    def search(self, query: ItemQuery) -> SearchPage:
        """Filtered search, newest published first, with the exact total."""
        offset = (query.page - 1) * query.size
        paging: dict[str, Any] = {"from_": offset}
        if query.after is not None:
            try:
                values = decode_cursor(query.after, 2)
            except BadCursor:
                # A cursor of the release that also sorted on the id: its first two values still place it.
                values = decode_cursor(query.after, 3)[:2]
            if not all(v is None or isinstance(v, int | float | str) for v in values):
                raise BadCursor(BAD_CURSOR)
            paging = {"search_after": values}  # no result window: any depth
        elif offset + query.size > _MAX_RESULT_WINDOW:
            # Offset pages stop at the window (deeper ones cost the node every skipped document); the cursor
            # reaches any depth at the cost of page 1, so the answer says how to use it.
            raise PageTooDeep(
                f"第 {query.page} 页（每页 {query.size} 条）超出了前 {_MAX_RESULT_WINDOW} 条结果：请改用游标翻页"
                "（把上一页返回的 next 作为 after 参数传入，可翻到任意深度），或用条件缩小范围"
            )
        self._refresh()
        resp = self._page(item_query(query, legacy=self._legacy_terms()), query.size, paging, self._first_window(query))
        hits = resp["hits"]
        rows = hits["hits"]
        cursor = encode_cursor(rows[-1]["sort"]) if len(rows) == query.size else None
        total = hits["total"]
        return SearchPage(
            results=[item_of(h["_source"]) for h in rows],
            total=min(int(total["value"]), self.count_cap),
            next=cursor,
            total_capped=total["relation"] == "gte" or int(total["value"]) > self.count_cap,
        )

    def iter_texts(self, query: ItemQuery, limit: int | None = None) -> Iterator[list[TextRow]]:
        """Pages of the query's items as TextRow, newest first: five fields of _source, search_after, no count."""
        title, content = ("title_masked", "content_masked") if query.masked else ("title", "content")
        legacy = self._legacy_terms()
        fields = ["id", "source", "published_at", title, content]
        if query.masked and legacy:
            # Documents the backfill has not reached yet lack the masked copy: mask their text here.
            fields += ["title", "content"]
        self._refresh()
        pages = self._search_pages(
            item_query(query, legacy=legacy),
            limit,
            _TEXT_PAGE,
            _TEXT_PAGE,
            source_includes=fields,
            filter_path=["hits.hits._source", "hits.hits.sort"],
        )
        for hits in pages:
            yield [_text_row(h["_source"], query.masked) for h in hits]

    def iter_ids(self, query: ItemQuery, limit: int | None = None) -> Iterator[list[IdRow]]:
        """Pages of ids (the handles) and sort values, newest first, growing from a small first page (a trial
        often needs only the first few hundred): the id from its doc values, so the node reads no stored field
        (neither _source nor _id, whose compressed blocks cost as much to open)."""
        self._refresh()
        pages = self._search_pages(
            item_query(query, legacy=self._legacy_terms()),
            limit,
            # A listing with a limit is walked and may stop early: small first; a term's holders are read whole.
            _ID_PAGE_FIRST if limit is not None else _ID_PAGE,
            _ID_PAGE,
            source=False,
            stored_fields=["_none_"],
            docvalue_fields=[{"field": "id"}],
            filter_path=["hits.hits.fields.id", "hits.hits.sort"],
        )
        for hits in pages:
            # An undated document sorts with the smallest long (missing: _last in a descending sort).
            yield [(h["fields"]["id"][0], (h["sort"][0] != _NO_DATE, h["sort"][0], h["sort"][1])) for h in hits]

    def _search_pages(
        self, search: dict[str, Any], limit: int | None, first: int, most: int, **request: Any
    ) -> Iterator[list[dict[str, Any]]]:
        """The hits of ``search``, newest first, in search_after pages of ``first`` growing fourfold up to
        ``most``, ``limit`` hits at most (None: all)."""
        after: list[Any] | None = None
        left = limit
        page = first
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            kwargs: dict[str, Any] = {"search_after": after} if after is not None else {}
            with self._call("search"):
                resp = self._es.search(
                    index=self.alias,
                    query=search,
                    sort=NEWEST_FIRST,
                    size=size,
                    track_total_hits=False,
                    **request,
                    **kwargs,
                )
            hits = resp.get("hits", {}).get("hits", [])
            if hits:
                yield hits
            if len(hits) < size:
                return
            if left is not None:
                left -= len(hits)
            after = hits[-1]["sort"]
            page = min(page * 4, most)

    def texts_of(self, handles: Sequence[Any], masked: bool) -> dict[Any, TextRow]:
        fields = ["id", "source", "published_at", "title", "content"]
        if masked:
            fields[3:] = ["title_masked", "content_masked", *(["title", "content"] if self._legacy_terms() else [])]
        ids = list(handles)
        found: dict[Any, TextRow] = {}
        self._refresh()
        for start in range(0, len(ids), _MGET_CHUNK):
            chunk = ids[start : start + _MGET_CHUNK]
            # A search on the ids rather than an mget: the node reads the documents in index order (several from
            # one decompressed block) instead of looking each id up on its own, a quarter less of its CPU for
            # the 1,000 suspects a trial may evaluate. The handles come from a search, so it finds them all.
            with self._call("search"):
                resp = self._es.search(
                    index=self.alias,
                    query={"ids": {"values": chunk}},
                    size=len(chunk),
                    track_total_hits=False,
                    source_includes=fields,
                    filter_path=["hits.hits._source"],
                )
            for hit in resp.get("hits", {}).get("hits", []):
                row = _text_row(hit["_source"], masked)
                found[row[0]] = row
        return found

    def finds_exactly(self, text: str) -> bool:
        # One Han character is one token: found exactly where it occurs. A phrase of several is found where
        # its tokens follow each other, also across punctuation and spaces (问，题 for 问题).
        return len(text) == 1 and self.finds_within_words(text)

    def _first_window(self, query: ItemQuery) -> float:
        """How much of the newest part of the index a search tries first (es_windows), 0 for none: text terms
        and deep offsets. A term within a selective filter (a department: 1 item in 200) is asked at once: the
        filter leads, so the node neither reads nor caches the term's matches of the whole index."""
        terms = bool(query.terms())
        if query.after is None and (query.page - 1) * query.size >= self.DEEP_OFFSET:
            return self.WINDOW_FIRST if terms else self.WINDOW_DENSE
        selective = any(v is not None for v in (query.department, query.source, query.event_id))
        return self.WINDOW_FIRST if terms and not selective else 0

    def count(self, query: ItemQuery | None = None) -> int:
        """How many items match the filters of the query (all items without one)."""
        self._refresh()
        with self._call("count"):
            resp = self._es.count(index=self.alias, query=item_query(query or ItemQuery(), legacy=self._legacy_terms()))
        return int(resp["count"])

    def day_counts(self, start: datetime, days: int) -> list[int]:
        """One request: a date_range aggregation with a bucket per day (exact bounds, any time zone)."""
        self._refresh()
        ranges = [
            {"from": (start + timedelta(days=i)).isoformat(), "to": (start + timedelta(days=i + 1)).isoformat()}
            for i in range(days)
        ]
        with self._call("search"):
            resp = self._es.search(
                index=self.alias,
                size=0,
                track_total_hits=False,
                query={"range": {"stored_at": {"gte": ranges[0]["from"], "lt": ranges[-1]["to"]}}},
                aggs={"days": {"date_range": {"field": "stored_at", "ranges": ranges, "keyed": False}}},
            )
        buckets = resp["aggregations"]["days"]["buckets"]
        # Buckets come back in the order of the ranges asked.
        return [int(b["doc_count"]) for b in buckets]

    def iter_unmatched(self, batch_size: int = 500) -> Iterator[list[Item]]:
        """Items never matched, oldest stored first, in batches; search_after, never deep paging."""
        return self._batches(NEVER_MATCHED, OLDEST_STORED_FIRST, batch_size)

    def iter_without_bands(self, batch_size: int = 500) -> Iterator[list[Item]]:
        """Documents without band keys (no ``lsh_done``), in id order; search_after, never deep paging."""
        # Documents of the release that wrote keys before "lsh_done" existed have their keys.
        query = {"bool": {"must_not": [{"exists": {"field": "lsh_done"}}, {"exists": {"field": "lsh"}}]}}
        return self._batches(query, [{"id": {"order": "asc"}}], batch_size)

    def _batches(self, query: dict[str, Any], sort: list[Any], batch_size: int) -> Iterator[list[Item]]:
        """The items of ``query`` in ``sort`` order, a batch at a time, walked with search_after."""
        self._refresh()
        after: list[Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"search_after": after} if after is not None else {}
            with self._call("search"):
                resp = self._es.search(
                    index=self.alias, query=query, sort=sort, size=batch_size, track_total_hits=False, **kwargs
                )
            hits = resp["hits"]["hits"]
            if not hits:
                return
            after = hits[-1]["sort"]
            yield [item_of(h["_source"]) for h in hits]
            if len(hits) < batch_size:
                return

    def set_bands(self, bands: Mapping[str, Sequence[int]]) -> None:
        """Partial updates writing each document's band keys (ids never stored are ignored)."""
        if bands:
            self._bulk_update({i: {"lsh": list(keys), "lsh_done": True} for i, keys in bands.items()})

    def counts(self) -> dict[str, Any]:
        """``{"total", "unmatched", "by_channel", "by_source"}`` from one aggregation request."""
        self._refresh()
        with self._call("search"):
            resp = self._es.search(
                index=self.alias,
                size=0,
                track_total_hits=True,
                aggs={
                    "by_channel": {"terms": {"field": "channel", "size": 10}},
                    "by_source": {"terms": {"field": "source", "size": 10_000}},
                    "unmatched": {"filter": NEVER_MATCHED},
                },
            )
        aggs = resp["aggregations"]
        return {
            "total": resp["hits"]["total"]["value"],
            "unmatched": aggs["unmatched"]["doc_count"],
            "by_channel": {b["key"]: b["doc_count"] for b in aggs["by_channel"]["buckets"]},
            "by_source": {b["key"]: b["doc_count"] for b in aggs["by_source"]["buckets"]},
        }

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent documents the cluster refused, newest first."""
        with self._call("search"):
            resp = self._es.search(
                index=self.deadletter_index, sort=[{"at": {"order": "desc"}}], size=limit, track_total_hits=False
            )
        return [
            DeadLetter(
                item_id=h["_source"]["item_id"],
                reason=h["_source"]["reason"],
                document=h["_source"].get("document") or {},
                at=datetime.fromisoformat(h["_source"]["at"]),
            )
            for h in resp["hits"]["hits"]
        ]
