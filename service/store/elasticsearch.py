"""The item store at scale: Elasticsearch 8 through elasticsearch-py, without scripts, pipelines or ILM.

Layout: an index template ``<prefix>-items`` with explicit mappings, a concrete index
``<prefix>-items-000001`` behind the write alias ``<prefix>-items``, and ``<prefix>-deadletter`` for
documents the cluster can never accept. Document ids are item ids, so a retried write never duplicates.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from elastic_transport import TransportError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch, NotFoundError
from loguru import logger

from service import clock
from service.masking import mask_text
from service.settings import ElasticsearchSettings
from service.store.base import (
    COUNT_CAP,
    BadCursor,
    DeadLetter,
    Item,
    ItemQuery,
    PageTooDeep,
    SearchPage,
    StoreUnavailable,
    UpsertResult,
    decode_cursor,
    encode_cursor,
    search_key,
)

# Candidate lookups of one batch per msearch request.
_MSEARCH_CHUNK = 100
# Fields the store adds to a document for its own lookups; they are not part of Item. "lsh" (the
# MinHash LSH band keys of repost detection) is indexed and never read back; "lsh_done" marks a document
# whose keys were written (none for an empty text), so band backfill finds the others. "simhash" and
# "band0".."band3" are left in documents of releases before MinHash and no longer written.
_INTERNAL = (
    "simhash", "band0", "band1", "band2", "band3", "stored_seq", "lsh", "lsh_done", "title_masked",
    "content_masked", "title_key", "content_key", "title_masked_key", "content_masked_key",
)  # fmt: skip
# Kept from the stored document when a re-crawl changes an item (as the SQLite backend does).
_KEPT_ON_UPDATE = ("stored_at", "stored_seq", "matched_at", "event_id")
_MAX_RESULT_WINDOW = 10_000
_MGET_CHUNK = 1000
_MAX_BACKOFF = 30.0
# Crawled text is hostile: a keyword longer than Lucene's 32 KB term limit would fail the whole
# document, so long values stay in _source but are not indexed.
_KEYWORD = {"type": "keyword", "ignore_above": 1024}
# A document refused for its size must still fit in the dead-letter index.
_DEAD_LETTER_TEXT = 20_000


def _safe_host(url: str) -> str:
    """A host URL fit for messages and health output: credentials in it are removed."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _is_rejection(status: int, error: Any) -> bool:
    kind = error.get("type", "") if isinstance(error, dict) else str(error)
    return status == 429 or "es_rejected_execution" in kind


def _is_transient(status: int) -> bool:
    # Shards moving, a node restarting: worth another try. 4xx (mapping, parsing) never succeeds.
    return status in (429, 502, 503, 504)


def _shrink(value: Any, limit: int = _DEAD_LETTER_TEXT) -> Any:
    """The document as kept in the dead-letter index: long strings cut, so the letter itself always fits."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"…[{len(value) - limit} characters cut]"
    if isinstance(value, dict):
        return {k: _shrink(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_shrink(v, limit) for v in value[:1000]]
    return value


def _reason(status: int, error: Any) -> str:
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
        return f"HTTP {status} {text}"
    return f"HTTP {status} {error}"


class ElasticsearchStore:
    """Items in an Elasticsearch cluster; see the module docstring for the index layout."""

    backend = "elasticsearch"

    def __init__(self, settings: ElasticsearchSettings) -> None:
        self.settings = settings
        prefix = settings.index_prefix
        self.alias = f"{prefix}-items"
        self.template = f"{prefix}-items"
        self.first_index = f"{prefix}-items-000001"
        self.deadletter_index = f"{prefix}-deadletter"
        self.hosts = [_safe_host(h) for h in settings.hosts]
        # How many per-document or whole-request rejections were retried: operators watch this to
        # see a cluster that is too small for the crawl rate.
        self.retried = 0
        self._dirty = False
        self._lock = threading.Lock()
        self._es = self._client()

    def _client(self) -> Elasticsearch:
        s = self.settings
        kwargs: dict[str, Any] = {
            "request_timeout": s.request_timeout,
            # 429 is retried by this store with backoff; the transport would retry it at once.
            "retry_on_status": (502, 503, 504),
            "max_retries": 2,
        }
        if s.username:
            kwargs["basic_auth"] = (s.username, s.password.get_secret_value() if s.password else "")
        if s.api_key:
            kwargs["api_key"] = s.api_key.get_secret_value()
        if s.ca_certs:
            kwargs["ca_certs"] = s.ca_certs
        kwargs["verify_certs"] = s.verify_certs
        return Elasticsearch(s.hosts, **kwargs)

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        """Turn 'cannot talk to the cluster' into StoreUnavailable naming the hosts."""
        try:
            yield
        except (AuthenticationException, AuthorizationException) as exc:
            raise StoreUnavailable(
                f"Elasticsearch at {', '.join(self.hosts)} refused {what}: {exc.message} "
                "(check store.elasticsearch.username/password/api_key)"
            ) from exc
        except NotFoundError as exc:
            if exc.error != "index_not_found_exception":
                raise
            raise StoreUnavailable(
                f"Elasticsearch at {', '.join(self.hosts)} has no index {self.alias} ({what}): run `yuqing init`"
            ) from exc
        except TransportError as exc:
            raise StoreUnavailable(
                f"Elasticsearch at {', '.join(self.hosts)} is unreachable ({what}): {exc.message}"
            ) from exc

    # -- index layout --------------------------------------------------------------------------
    def _mappings(self) -> dict[str, Any]:
        text = {"type": "text", "analyzer": self.settings.analyzer}
        return {
            # Unknown fields (a newer Item) stay in _source, never fail a write.
            "dynamic": False,
            "properties": {
                "id": {"type": "keyword"},
                "source": {"type": "keyword"},
                "channel": {"type": "keyword"},
                "external_id": _KEYWORD,
                "url": _KEYWORD,
                "title": text,
                # The masked copy every role but admin searches (see ItemQuery.masked).
                "title_masked": text,
                "content_masked": text,
                "content": text,
                # Search keys (see base.search_key): the texts above folded for case and width.
                "title_key": text,
                "content_key": text,
                "title_masked_key": text,
                "content_masked_key": text,
                "published_at": {"type": "date"},
                "fetched_at": {"type": "date"},
                "department": _KEYWORD,
                "status": _KEYWORD,
                "reply": text,
                "replied_at": {"type": "date"},
                "event_id": {"type": "keyword"},
                "lsh": {"type": "long"},
                "lsh_done": {"type": "boolean"},
                "fingerprint": {"type": "keyword", "index": False},
                "stored_at": {"type": "date"},
                "stored_seq": {"type": "long"},
                "updated_at": {"type": "date"},
                "matched_at": {"type": "date"},
                # Whatever a source adds: searchable as keywords, and no mapping explosion or type
                # conflict between sources (an object 20 levels deep is still refused).
                "extra": {"type": "flattened", "ignore_above": 1024},
            },
        }

    def _index_settings(self) -> dict[str, Any]:
        return {
            "number_of_shards": self.settings.number_of_shards,
            "number_of_replicas": self.settings.number_of_replicas,
        }

    def init(self) -> None:
        """Create or update the index template, the first index with its alias, the dead-letter index."""
        es = self._es
        with self._call("init"):
            es.indices.put_index_template(
                name=self.template,
                index_patterns=[f"{self.alias}-*"],
                template={"settings": self._index_settings(), "mappings": self._mappings()},
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
                es.indices.put_mapping(index=self.alias, **self._mappings())
                self._backfill_masked()
            if not es.indices.exists(index=self.deadletter_index):
                try:
                    es.indices.create(
                        index=self.deadletter_index,
                        settings=self._index_settings(),
                        mappings={
                            "dynamic": False,
                            "properties": {
                                "item_id": {"type": "keyword"},
                                "reason": {"type": "text"},
                                "at": {"type": "date"},
                                # Kept verbatim and never indexed, so the dead letter itself cannot fail.
                                "document": {"type": "object", "enabled": False},
                            },
                        },
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
    def _backfill_masked(self) -> None:
        """Give documents stored before the masked copy existed their masked title and content."""
        # One pass in id order (an empty title may never count as "existing", so no re-query until empty).
        after: list[Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"search_after": after} if after is not None else {}
            with self._call("search"):
                resp = self._es.search(
                    index=self.alias,
                    query={"bool": {"must_not": [{"exists": {"field": "content_masked"}}]}},
                    source_includes=["title", "content"],
                    sort=[{"id": "asc"}],
                    size=500,
                    **kwargs,
                )
            hits = resp["hits"]["hits"]
            if not hits:
                return
            after = hits[-1]["sort"]
            self._bulk_update(
                {
                    h["_id"]: {
                        "title_masked": mask_text(h["_source"].get("title") or ""),
                        "content_masked": mask_text(h["_source"].get("content") or ""),
                    }
                    for h in hits
                }
            )

    def _document(self, item: Item) -> dict[str, Any]:
        doc = item.model_dump(mode="json")
        doc["title_masked"] = mask_text(item.title)
        doc["content_masked"] = mask_text(item.content)
        for name in ("title", "content", "title_masked", "content_masked"):
            doc[f"{name}_key"] = search_key(doc[name])
        if item.lsh:
            doc["lsh_done"] = True
        return doc

    def _check_doc(self, doc: dict[str, Any], what: str) -> None:
        """mget reports a missing index per document instead of failing: treat it as the whole store missing."""
        error = doc.get("error")
        if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
            raise StoreUnavailable(
                f"Elasticsearch at {', '.join(self.hosts)} has no index {self.alias} ({what}): run `yuqing init`"
            )

    def _existing(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _MGET_CHUNK):
            chunk = ids[start : start + _MGET_CHUNK]
            with self._call("mget"):
                resp = self._es.mget(
                    index=self.alias,
                    ids=chunk,
                    source_includes=["fingerprint", "lsh", "lsh_done", *_KEPT_ON_UPDATE],
                )
            for doc in resp["docs"]:
                self._check_doc(doc, "mget")
                if doc.get("found"):
                    found[doc["_id"]] = doc.get("_source", {})
        return found

    def upsert(self, items: Sequence[Item]) -> UpsertResult:
        """Insert new items, replace changed ones, skip unchanged ones; refused documents are dead-lettered."""
        result = UpsertResult()
        size = self.settings.bulk_chunk_size
        for start in range(0, len(items), size):
            result.merge(self._upsert_chunk(items[start : start + size]))
        return result

    def _upsert_chunk(self, items: Sequence[Item]) -> UpsertResult:
        result = UpsertResult()
        # The last occurrence of an id is what gets stored.
        latest: dict[str, Item] = {}
        for raw in items:
            latest[raw.id] = raw if raw.fingerprint else raw.with_fingerprint()
        existing = self._existing(list(latest))
        now = clock.now()
        base_seq = int(now.timestamp() * 1_000_000) * 1000
        docs: dict[str, dict[str, Any]] = {}
        kinds: dict[str, str] = {}
        for position, item in enumerate(latest.values()):
            old = existing.get(item.id)
            if old is not None and old.get("fingerprint") == item.fingerprint:
                kinds[item.id] = "unchanged"
                continue
            if old is None:
                doc = self._document(item.model_copy(update={"stored_at": now, "updated_at": now}))
                doc["stored_seq"] = base_seq + min(position, 999)
                kinds[item.id] = "new"
            else:
                doc = self._document(item.model_copy(update={"updated_at": now}))
                for name in _KEPT_ON_UPDATE:
                    doc[name] = old.get(name)
                if not item.lsh:
                    # Written without band keys (not through the crawl pipeline): keep the ones it had.
                    doc["lsh"] = old.get("lsh") or []
                    if old.get("lsh_done"):
                        doc["lsh_done"] = True
                kinds[item.id] = "updated"
            docs[item.id] = doc
        failed = self._bulk_index(docs)
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

    def _backoff(self, attempt: int) -> None:
        delay = min(self.settings.bulk_initial_backoff * (2**attempt), _MAX_BACKOFF)
        time.sleep(delay * random.uniform(0.5, 1.0))

    def _bulk_index(self, docs: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Index the documents; returns id -> reason for those that failed for good."""
        pending = dict(docs)
        failed: dict[str, str] = {}
        attempt = 0
        while pending:
            operations: list[dict[str, Any]] = []
            for doc_id, doc in pending.items():
                operations += [{"index": {"_index": self.alias, "_id": doc_id}}, doc]
            retry: dict[str, dict[str, Any]] = {}
            last_reason: dict[str, str] = {}
            try:
                with self._call("bulk"):
                    # require_alias: a write must never auto-create a dynamically mapped index.
                    resp = self._es.bulk(operations=operations, require_alias=True)
            except ApiError as exc:
                if exc.status_code == 413 and len(pending) > 1:
                    # Over http.max_content_length: halve the request rather than lose the chunk.
                    ids = list(pending)
                    half = len(ids) // 2
                    failed.update(self._bulk_index({i: pending[i] for i in ids[:half]}))
                    failed.update(self._bulk_index({i: pending[i] for i in ids[half:]}))
                    break
                if not _is_transient(exc.status_code):
                    # The request as a whole can never succeed; keep its documents, with the reason.
                    failed.update({i: _reason(exc.status_code, exc.error) for i in pending})
                    break
                # The whole request was turned away (coordinating-node rejection): retry all of it.
                retry = pending
                last_reason = {i: _reason(exc.status_code, exc.error) for i in pending}
            else:
                self._dirty = True
                for entry in resp["items"]:
                    outcome = next(iter(entry.values()))
                    doc_id, status = outcome["_id"], outcome.get("status", 500)
                    error = outcome.get("error")
                    if error is None and status < 300:
                        continue
                    self._check_doc(outcome, "bulk")
                    if _is_rejection(status, error) or _is_transient(status):
                        retry[doc_id] = pending[doc_id]
                        last_reason[doc_id] = _reason(status, error)
                    else:
                        failed[doc_id] = _reason(status, error)
            if not retry:
                break
            if attempt >= self.settings.bulk_max_retries:
                for doc_id in retry:
                    failed[doc_id] = f"still rejected after {attempt} retries: {last_reason[doc_id]}"
                break
            with self._lock:
                self.retried += len(retry)
            logger.warning(
                "Elasticsearch rejected {} documents (retry {} of {})",
                len(retry),
                attempt + 1,
                self.settings.bulk_max_retries,
            )
            self._backoff(attempt)
            attempt += 1
            pending = retry
        return failed

    def _dead_letter(self, reasons: dict[str, str], docs: dict[str, dict[str, Any]]) -> None:
        now = clock.now().isoformat()
        operations: list[dict[str, Any]] = []
        for doc_id, reason in reasons.items():
            logger.error("item {} dead-lettered: {}", doc_id, reason)
            operations += [
                {"index": {"_index": self.deadletter_index, "_id": uuid.uuid4().hex}},
                {"item_id": doc_id, "reason": reason, "at": now, "document": _shrink(docs[doc_id])},
            ]
        for attempt in range(self.settings.bulk_max_retries + 1):
            resp = self._bulk_request(operations, "dead-letter write", refresh=True)
            if not resp.get("errors"):
                return
            if attempt < self.settings.bulk_max_retries:
                self._backoff(attempt)
        # Losing a document silently is the one thing the dead-letter index exists to prevent.
        raise StoreUnavailable(
            f"Elasticsearch at {', '.join(self.hosts)} refused the dead-letter index "
            f"{self.deadletter_index}: {resp['items'][:1]}"
        )

    def _bulk_request(self, operations: list[dict[str, Any]], what: str, **kwargs: Any) -> Any:
        """One bulk request; a whole-request rejection (429 under load, 502-504) is retried with backoff."""
        for attempt in range(self.settings.bulk_max_retries + 1):
            try:
                with self._call(what):
                    return self._es.bulk(operations=operations, **kwargs)
            except ApiError as exc:
                if not _is_transient(exc.status_code) or attempt >= self.settings.bulk_max_retries:
                    raise
                with self._lock:
                    self.retried += 1
                logger.warning("Elasticsearch rejected a {} request ({}); retrying", what, exc.status_code)
                self._backoff(attempt)
        raise AssertionError("unreachable")

    def _bulk_update(self, updates: dict[str, dict[str, Any]]) -> None:
        """Partial updates by id; ids that do not exist are ignored, rejections retried."""
        pending = updates
        for attempt in range(self.settings.bulk_max_retries + 1):
            operations: list[dict[str, Any]] = []
            for doc_id, fields in pending.items():
                operations += [{"update": {"_index": self.alias, "_id": doc_id}}, {"doc": fields}]
            resp = self._bulk_request(operations, "bulk update", require_alias=True)
            self._dirty = True
            retry: dict[str, dict[str, Any]] = {}
            for entry in resp["items"]:
                outcome = entry["update"]
                status, error = outcome.get("status", 500), outcome.get("error")
                self._check_doc(outcome, "bulk update")
                if error is None or status == 404:
                    # document_missing_exception: updating an id never stored is a no-op, as in SQLite.
                    continue
                if _is_rejection(status, error) or _is_transient(status):
                    retry[outcome["_id"]] = pending[outcome["_id"]]
                else:
                    raise ValueError(
                        f"Elasticsearch refused an update of item {outcome['_id']}: {_reason(status, error)}"
                    )
            if not retry:
                return
            with self._lock:
                self.retried += len(retry)
            self._backoff(attempt)
            pending = retry
        raise StoreUnavailable(
            f"Elasticsearch at {', '.join(self.hosts)} kept rejecting updates of {len(pending)} items"
        )

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
    def _refresh(self) -> None:
        """Make this process's own writes visible to searches (reads after writes, not every second)."""
        if self._dirty:
            self._dirty = False
            with self._call("refresh"):
                self._es.indices.refresh(index=self.alias)

    @staticmethod
    def _item(source: dict[str, Any]) -> Item:
        data = {k: v for k, v in source.items() if k not in _INTERNAL}
        return Item.model_validate(data)

    def get(self, item_id: str) -> Item | None:
        """The item with this id, or None."""
        try:
            with self._call("get"):
                resp = self._es.get(index=self.alias, id=item_id)
        except NotFoundError:
            return None
        return self._item(resp["_source"])

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
                    found[doc["_id"]] = self._item(doc["_source"])
        return [found[i] for i in ids if i in found]

    @staticmethod
    def _query(query: ItemQuery) -> dict[str, Any]:
        must: list[dict[str, Any]] = []
        title, content = ("title_masked", "content_masked") if query.masked else ("title", "content")
        for term in query.terms():
            # The standard analyzer makes each CJK character a token, so a phrase of them matches the
            # word exactly: 化工厂 does not match 化工 … 厂.
            must.append(
                {
                    "bool": {
                        "should": [
                            {"match_phrase": {f"{title}_key": search_key(term)}},
                            {"match_phrase": {f"{content}_key": search_key(term)}},
                            # Documents written before the search keys existed.
                            {"match_phrase": {title: term}},
                            {"match_phrase": {content: term}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
            )
        filters: list[dict[str, Any]] = []
        for name in ("channel", "source", "department", "event_id"):
            value = getattr(query, name)
            if value is not None:
                filters.append({"term": {name: value}})
        window: dict[str, str] = {}
        if query.date_from is not None:
            window["gte"] = query.date_from.isoformat()
        if query.date_to is not None:
            window["lt"] = query.date_to.isoformat()
        if window:
            filters.append({"range": {"published_at": window}})
        if not must and not filters:
            return {"match_all": {}}
        return {"bool": {"must": must, "filter": filters}}

    def search(self, query: ItemQuery) -> SearchPage:
        """Filtered search, newest published first, with the exact total."""
        offset = (query.page - 1) * query.size
        paging: dict[str, Any] = {"from_": offset}
        if query.after is not None:
            values = decode_cursor(query.after, 3)
            if not all(v is None or isinstance(v, int | float | str) for v in values):
                raise BadCursor("after: 不是有效的翻页游标")
            paging = {"search_after": values}  # no result window: any depth
        elif offset + query.size > _MAX_RESULT_WINDOW:
            raise PageTooDeep(
                f"第 {query.page} 页（每页 {query.size} 条）超出了前 {_MAX_RESULT_WINDOW} 条结果，请用条件缩小范围"
            )
        self._refresh()
        with self._call("search"):
            resp = self._es.search(
                index=self.alias,
                query=self._query(query),
                sort=[
                    {"published_at": {"order": "desc", "missing": "_last"}},
                    {"stored_seq": {"order": "desc"}},
                    {"id": {"order": "desc"}},
                ],
                size=query.size,
                track_total_hits=COUNT_CAP,
                **paging,
            )
        hits = resp["hits"]
        rows = hits["hits"]
        cursor = encode_cursor(rows[-1]["sort"]) if len(rows) == query.size else None
        total = hits["total"]
        return SearchPage(
            results=[self._item(h["_source"]) for h in rows],
            total=min(int(total["value"]), COUNT_CAP),
            next=cursor,
            total_capped=total["relation"] == "gte" or int(total["value"]) > COUNT_CAP,
        )

    def count(self, query: ItemQuery | None = None) -> int:
        """How many items match the filters of the query (all items without one)."""
        self._refresh()
        with self._call("count"):
            resp = self._es.count(index=self.alias, query=self._query(query or ItemQuery()))
        return int(resp["count"])

    def iter_unmatched(self, batch_size: int = 500) -> Iterator[list[Item]]:
        """Items never matched, oldest stored first, in batches; search_after, never deep paging."""
        self._refresh()
        after: list[Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"search_after": after} if after is not None else {}
            with self._call("search"):
                resp = self._es.search(
                    index=self.alias,
                    query={"bool": {"must_not": [{"exists": {"field": "matched_at"}}]}},
                    sort=[{"stored_seq": {"order": "asc"}}, {"id": {"order": "asc"}}],
                    size=batch_size,
                    track_total_hits=False,
                    **kwargs,
                )
            hits = resp["hits"]["hits"]
            if not hits:
                return
            after = hits[-1]["sort"]
            yield [self._item(h["_source"]) for h in hits]
            if len(hits) < batch_size:
                return

    def iter_without_bands(self, batch_size: int = 500) -> Iterator[list[Item]]:
        """Documents without band keys (no ``lsh_done``), in id order; search_after, never deep paging."""
        self._refresh()
        after: list[Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"search_after": after} if after is not None else {}
            with self._call("search"):
                resp = self._es.search(
                    index=self.alias,
                    # Documents of the release that wrote keys before "lsh_done" existed have their keys.
                    query={"bool": {"must_not": [{"exists": {"field": "lsh_done"}}, {"exists": {"field": "lsh"}}]}},
                    sort=[{"id": {"order": "asc"}}],
                    size=batch_size,
                    track_total_hits=False,
                    **kwargs,
                )
            hits = resp["hits"]["hits"]
            if not hits:
                return
            after = hits[-1]["sort"]
            yield [self._item(h["_source"]) for h in hits]
            if len(hits) < batch_size:
                return

    def set_bands(self, bands: Mapping[str, Sequence[int]]) -> None:
        """Partial updates writing each document's band keys (ids never stored are ignored)."""
        if bands:
            self._bulk_update({i: {"lsh": list(keys), "lsh_done": True} for i, keys in bands.items()})

    def lsh_candidates(self, bands: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        """Stored items sharing a band with each key's bands: one msearch for the whole batch.

        Each band is a constant-score clause, so the score is the number of shared bands.
        """
        keys = [k for k, v in bands.items() if v]
        if not keys:
            return {}
        self._refresh()
        out: dict[str, list[Item]] = {}
        for start in range(0, len(keys), _MSEARCH_CHUNK):
            chunk = keys[start : start + _MSEARCH_CHUNK]
            searches: list[dict[str, Any]] = []
            for key in chunk:
                should = [{"constant_score": {"filter": {"term": {"lsh": b}}}} for b in sorted(set(bands[key]))]
                searches += [
                    {"index": self.alias},
                    {
                        "query": {"bool": {"should": should, "minimum_should_match": 1}},
                        "sort": [{"_score": {"order": "desc"}}, {"stored_seq": {"order": "asc"}}],
                        "size": limit,
                        "track_total_hits": False,
                    },
                ]
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
                    out[key] = [self._item(h["_source"]) for h in hits]
        return out

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
                    "unmatched": {"filter": {"bool": {"must_not": [{"exists": {"field": "matched_at"}}]}}},
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
