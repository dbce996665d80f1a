"""How items lie in Elasticsearch: the mappings and settings of the index template, the dead-letter index,
the document written for an item and the item read back from it.

Layout: an index template ``<prefix>-items`` with explicit mappings, a concrete index
``<prefix>-items-000001`` behind the write alias ``<prefix>-items``, and ``<prefix>-deadletter`` for
documents the cluster can never accept. Document ids are item ids, so a retried write never duplicates.
"""

from __future__ import annotations

from typing import Any

from service.masking import mask_text
from service.settings import ElasticsearchSettings
from service.store.base import Item, search_key

# Fields the store adds to a document for its own lookups; they are not part of Item. "lsh" (the
# MinHash LSH band keys of repost detection) is indexed and never read back; "lsh_done" marks a document
# whose keys were written (none for an empty text), so band backfill finds the others. "simhash" and
# "band0".."band3" are left in documents of releases before MinHash and no longer written.
_INTERNAL = (
    "simhash", "band0", "band1", "band2", "band3", "stored_seq", "lsh", "lsh_done", "title_masked",
    "content_masked", "title_key", "content_key", "title_masked_key", "content_masked_key",
)  # fmt: skip
# Left out of the documents a candidate lookup reads: the copies of the texts that item_of drops anyway
# (three times the text itself), so neither the node nor this process handles them.
LOOKUP_EXCLUDES = tuple(name for name in _INTERNAL if name not in ("lsh", "stored_seq"))
# Left out of the documents a page of search results reads (item_of drops them anyway).
READ_EXCLUDES = _INTERNAL
# Kept from the stored document when a re-crawl changes an item (as the SQLite backend does).
KEPT_ON_UPDATE = ("stored_at", "stored_seq", "matched_at", "event_id")
# Crawled text is hostile: a keyword longer than Lucene's 32 KB term limit would fail the whole
# document, so long values stay in _source but are not indexed.
_KEYWORD = {"type": "keyword", "ignore_above": 1024}

DEAD_LETTER_MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "item_id": {"type": "keyword"},
        "reason": {"type": "text"},
        "at": {"type": "date"},
        # Kept verbatim and never indexed, so the dead letter itself cannot fail.
        "document": {"type": "object", "enabled": False},
    },
}


def item_mappings(analyzer: str) -> dict[str, Any]:
    """The mappings of the items index (the template and an existing index alike)."""
    text = {"type": "text", "analyzer": analyzer}
    return {
        # Unknown fields (a newer Item) stay in _source, never fail a write.
        "dynamic": False,
        "properties": {
            "id": {"type": "keyword"},
            "source": {"type": "keyword"},
            "channel": {"type": "keyword"},
            "external_id": _KEYWORD,
            "order_no": _KEYWORD,
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


# Recorded in an index's mapping _meta once every document in it has its search keys: set at creation
# from the template (this release always writes them), and by `yuqing init` after filling in older ones.
SEARCH_KEYS_META = "search_keys"
# The folded copies written for every document (see document()).
KEY_FIELDS = ("title_key", "content_key", "title_masked_key", "content_masked_key")


def template_mappings(analyzer: str) -> dict[str, Any]:
    """The mappings of indices created from the template: new indices hold only documents with keys."""
    return {"_meta": {SEARCH_KEYS_META: True}, **item_mappings(analyzer)}


def derived_fields(title: str, content: str) -> dict[str, str]:
    """The masked copies and search keys of a title and content (what document() adds)."""
    out = {"title_masked": mask_text(title), "content_masked": mask_text(content)}
    for name, text in (("title", title), ("content", content), *out.items()):
        out[f"{name}_key"] = search_key(text)
    return out


def index_settings(settings: ElasticsearchSettings) -> dict[str, Any]:
    """Shards and replicas of every index the store creates."""
    return {
        "number_of_shards": settings.number_of_shards,
        "number_of_replicas": settings.number_of_replicas,
    }


# The items index is stored in the listing order (newest published first, then the storage sequence; see
# es_queries.NEWEST_FIRST, which must stay equal to it): a page, filtered or not, stops reading after the
# documents it shows and the capped count instead of sorting every match (early termination). Fixed at index
# creation, so `yuqing init` moves an index without it into a new one (see ElasticsearchStore.init).
ITEM_SORT: dict[str, list[str]] = {
    "sort.field": ["published_at", "stored_seq"],
    "sort.order": ["desc", "desc"],
    "sort.missing": ["_last", "_last"],
}


def item_index_settings(settings: ElasticsearchSettings) -> dict[str, Any]:
    """The settings of an items index: shards, replicas and the listing order."""
    return {**index_settings(settings), **ITEM_SORT}


def has_item_sort(index_settings_: dict[str, Any]) -> bool:
    """Whether an index's settings (as ``indices.get_settings`` returns them) hold the listing order."""
    sort = index_settings_.get("index", {}).get("sort", {})
    return sort.get("field") == ITEM_SORT["sort.field"] and sort.get("order") == ITEM_SORT["sort.order"]


def document(item: Item) -> dict[str, Any]:
    """The document of ``item``: its fields, the masked copy and the folded search keys."""
    doc = item.model_dump(mode="json")
    doc.update(derived_fields(item.title, item.content))
    if item.lsh:
        doc["lsh_done"] = True
    return doc


def item_of(source: dict[str, Any]) -> Item:
    """The item of a stored document (the store's own lookup fields left out)."""
    data = {k: v for k, v in source.items() if k not in _INTERNAL}
    return Item.model_validate(data)
