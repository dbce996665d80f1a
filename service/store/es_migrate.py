"""Moving items indices created without the listing order (index sorting) into one that has it.

Index sorting is fixed when an index is created, so `yuqing init` of this release creates the next index of
the alias from the template (which carries the order), copies every document into it with the cluster's
search_after and bulk, and then swaps the alias in one atomic step that also deletes the old indices. Writes to the old
indices are blocked while the copy runs, so a write in that window fails loudly (dead-lettered or retried
by the caller) instead of being lost in an index that is about to go; run init with the crawler stopped.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch
from loguru import logger

from service.store.base import StoreUnavailable
from service.store.es_layout import has_item_sort

# Documents per search and bulk request of the copy.
_COPY_BATCH = 1000


def unsorted_indices(es: Elasticsearch, alias: str) -> list[str]:
    """The indices behind ``alias`` that are not stored in the listing order."""
    found = es.indices.get_settings(index=alias)
    return sorted(name for name, body in found.items() if not has_item_sort(body["settings"]))


def next_index(es: Elasticsearch, alias: str) -> str:
    """The name after the highest ``<alias>-NNNNNN`` index that exists (behind the alias or not)."""
    numbers = [1]
    for name in es.indices.get(index=f"{alias}-*", expand_wildcards="all"):
        tail = name.rsplit("-", 1)[1]
        if tail.isdigit():
            numbers.append(int(tail))
    return f"{alias}-{max(numbers) + 1:06d}"


def _copy(es: Elasticsearch, old: list[str], target: str) -> None:
    """Every document of ``old`` into ``target`` as it is (same id, same source), in id order.

    Not the cluster's ``_reindex``: the integration-test distribution has no reindex module, and the copy has to
    work on every distribution the store supports. The old indices take no writes meanwhile, so one pass of
    search_after in id order sees each document once.
    """
    after: list[Any] | None = None
    copied = 0
    while True:
        kwargs: dict[str, Any] = {"search_after": after} if after is not None else {}
        resp = es.search(index=old, sort=[{"id": "asc"}], size=_COPY_BATCH, track_total_hits=False, **kwargs)
        hits = resp["hits"]["hits"]
        if not hits:
            return
        operations: list[dict[str, Any]] = []
        for hit in hits:
            operations += [{"index": {"_index": target, "_id": hit["_id"]}}, hit["_source"]]
        answer = es.bulk(operations=operations)
        if answer.get("errors"):
            failed = [i["index"] for i in answer["items"] if i["index"].get("error")][:3]
            raise StoreUnavailable(f"重建索引失败：{failed}")
        copied += len(hits)
        if copied % (_COPY_BATCH * 100) == 0:
            logger.info("重建索引进行中：已复制 {} 条", copied)
        after = hits[-1]["sort"]
        if len(hits) < _COPY_BATCH:
            return


def sort_items_indices(es: Elasticsearch, alias: str) -> str | None:
    """Move the documents of every index behind ``alias`` that lacks the listing order into a new index
    created from the template; returns the new index's name, or None when nothing had to move."""
    old = unsorted_indices(es, alias)
    if not old:
        return None
    target = next_index(es, alias)
    expected = int(es.count(index=old)["count"])
    logger.info("索引 {} 没有按列表顺序排序：把 {} 条文档移到新索引 {}", ", ".join(old), expected, target)
    es.indices.create(index=target)
    es.indices.put_settings(index=old, settings={"index.blocks.write": True})
    try:
        _copy(es, old, target)
        es.indices.refresh(index=target)
        copied = int(es.count(index=target)["count"])
        if copied != expected:
            raise StoreUnavailable(f"重建索引后文档数不符：原有 {expected} 条，新索引 {copied} 条")
        # One atomic step: the new index takes the alias (and the writes) and the old ones are deleted.
        actions: list[dict[str, Any]] = [{"add": {"index": target, "alias": alias, "is_write_index": True}}]
        actions += [{"remove_index": {"index": name}} for name in old]
        es.indices.update_aliases(actions=actions)
    except BaseException:
        # Leave things as they were: the old indices writable behind the alias, no half-filled copy.
        es.indices.put_settings(index=old, settings={"index.blocks.write": None})
        es.options(ignore_status=404).indices.delete(index=target)
        raise
    return target
