"""Talking to the cluster and writing in bulk: errors as StoreUnavailable, retries with backoff, dead letters.

A whole request turned away (429 under load, 502-504 while shards move) or a document rejected for the
same reasons is retried with exponential backoff up to ``bulk_max_retries``, then reported as StoreUnavailable
(the spool keeps the batch); a document the cluster can never accept (mapping, parsing, size) goes to the
dead-letter index with the reason, never silently lost.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch, NotFoundError
from loguru import logger

from service import clock
from service.settings import ElasticsearchSettings
from service.store.base import StoreUnavailable
from service.store.es_fresh import FreshWrites

_MAX_BACKOFF = 30.0
# A document refused for its size must still fit in the dead-letter index.
_DEAD_LETTER_TEXT = 20_000


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


class BulkWriting:
    """The cluster calls and bulk writes of :class:`service.store.elasticsearch.ElasticsearchStore`."""

    settings: ElasticsearchSettings
    alias: str
    deadletter_index: str
    hosts: list[str]
    # How many per-document or whole-request rejections were retried: operators watch this to see a
    # cluster that is too small for the crawl rate.
    retried: int
    # What this process wrote since the last refresh (the next read that must see it refreshes first; a
    # candidate lookup merges the documents in instead, see service.store.es_fresh).
    _fresh: FreshWrites
    _lock: threading.Lock
    _es: Elasticsearch

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

    def _check_doc(self, doc: dict[str, Any], what: str) -> None:
        """mget reports a missing index per document instead of failing: treat it as the whole store missing."""
        error = doc.get("error")
        if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
            raise StoreUnavailable(
                f"Elasticsearch at {', '.join(self.hosts)} has no index {self.alias} ({what}): run `yuqing init`"
            )

    def _refresh(self) -> None:
        """Make this process's own writes visible to searches (reads after writes, not every second)."""
        if self._fresh.clear():
            with self._call("refresh"):
                self._es.indices.refresh(index=self.alias)

    def _backoff(self, attempt: int) -> None:
        delay = min(self.settings.bulk_initial_backoff * (2**attempt), _MAX_BACKOFF)
        time.sleep(delay * random.uniform(0.5, 1.0))

    def _bulk_index(self, docs: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Index the documents; returns id -> reason for those that failed for good."""
        return self._bulk_write(docs, ())[0]

    def _bulk_write(self, docs: dict[str, dict[str, Any]], create: Collection[str]) -> tuple[dict[str, str], list[str]]:
        """Index the documents, those in ``create`` only if their id is not stored yet; returns id -> reason
        for those that failed for good, and the ids of ``create`` that were stored already (nothing written)."""
        pending = dict(docs)
        failed: dict[str, str] = {}
        refused: list[str] = []
        attempt = 0
        while pending:
            operations: list[dict[str, Any]] = []
            for doc_id, doc in pending.items():
                op = "create" if doc_id in create else "index"
                operations += [{op: {"_index": self.alias, "_id": doc_id}}, doc]
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
                    for part in (ids[:half], ids[half:]):
                        part_failed, part_refused = self._bulk_write({i: pending[i] for i in part}, create)
                        failed.update(part_failed)
                        refused += part_refused
                    break
                if not _is_transient(exc.status_code):
                    # The request as a whole can never succeed; keep its documents, with the reason.
                    failed.update({i: _reason(exc.status_code, exc.error) for i in pending})
                    break
                # The whole request was turned away (coordinating-node rejection): retry all of it.
                retry = pending
                last_reason = {i: _reason(exc.status_code, exc.error) for i in pending}
            else:
                written: list[tuple[str, dict[str, Any], tuple[int, int]]] = []
                for entry in resp["items"]:
                    outcome = next(iter(entry.values()))
                    doc_id, status = outcome["_id"], outcome.get("status", 500)
                    error = outcome.get("error")
                    if error is None and status < 300:
                        written.append((doc_id, pending[doc_id], (outcome["_primary_term"], outcome["_seq_no"])))
                        continue
                    self._check_doc(outcome, "bulk")
                    if status == 409 and doc_id in create:
                        refused.append(doc_id)
                    elif _is_rejection(status, error) or _is_transient(status):
                        retry[doc_id] = pending[doc_id]
                        last_reason[doc_id] = _reason(status, error)
                    else:
                        failed[doc_id] = _reason(status, error)
                self._fresh.indexed(written)
            if not retry:
                break
            if attempt >= self.settings.bulk_max_retries:
                # Still too busy (a full write queue, the memory breaker, a full disk's flood-stage block): the
                # cluster cannot take writes now, which says nothing against the documents. Dead-lettering them
                # would drop them from the index for good; as unavailable, the batch waits in the spool instead
                # (replays are idempotent, so what of it was written already is not doubled).
                sample = next(iter(last_reason.values()))
                raise StoreUnavailable(
                    f"Elasticsearch at {', '.join(self.hosts)} still rejected {len(retry)} documents after "
                    f"{attempt} retries: {sample}"
                )
            with self._lock:
                self.retried += len(retry)
            logger.warning(
                "Elasticsearch 拒绝了 {} 个文档（第 {} 次重试，共 {} 次）",
                len(retry),
                attempt + 1,
                self.settings.bulk_max_retries,
            )
            self._backoff(attempt)
            attempt += 1
            pending = retry
        return failed, refused

    def _dead_letter(self, reasons: dict[str, str], docs: dict[str, dict[str, Any]]) -> None:
        now = clock.now().isoformat()
        operations: list[dict[str, Any]] = []
        for doc_id, reason in reasons.items():
            logger.error("条目 {} 已转入死信：{}", doc_id, reason)
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
                if not _is_transient(exc.status_code):
                    raise
                if attempt >= self.settings.bulk_max_retries:
                    raise StoreUnavailable(
                        f"Elasticsearch at {', '.join(self.hosts)} still rejected {what} after {attempt} retries: "
                        f"{_reason(exc.status_code, exc.error)}"
                    ) from exc
                with self._lock:
                    self.retried += 1
                logger.warning("Elasticsearch 拒绝了 {} 请求（{}），正在重试", what, exc.status_code)
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
            self._fresh.updated(pending)
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
