"""The searches of the Elasticsearch store as request bodies: an ItemQuery's terms and filters, the sort
orders, the never-matched items, and the candidate lookups of repost detection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.store.base import ItemQuery, search_key

# Newest published first; the storage sequence (unique per write, see ElasticsearchStore._allot_seq) breaks
# ties, so search_after pages never skip or repeat. No keyword tie-breaker: sorting on "id" as well made
# every list 4x slower at 560k items (it keeps Lucene from skipping documents that cannot reach the page).
NEWEST_FIRST: list[dict[str, Any]] = [
    {"published_at": {"order": "desc", "missing": "_last"}},
    {"stored_seq": {"order": "desc"}},
]
OLDEST_STORED_FIRST: list[dict[str, Any]] = [{"stored_seq": {"order": "asc"}}, {"id": {"order": "asc"}}]
NEVER_MATCHED: dict[str, Any] = {"bool": {"must_not": [{"exists": {"field": "matched_at"}}]}}


def item_query(query: ItemQuery, legacy: bool = True) -> dict[str, Any]:
    """The query of ``query``'s terms (phrases in title or content) and filters.

    ``legacy``: some documents may lack the search keys (stored by a release before them), so each term
    also asks the unfolded texts. Once every index says its documents have keys (``yuqing init`` fills
    them in), the term is two phrase queries instead of four: half the postings read per search.
    """
    must: list[dict[str, Any]] = []
    title, content = ("title_masked", "content_masked") if query.masked else ("title", "content")
    for term in query.terms():
        # The standard analyzer makes each CJK character a token, so a phrase of them matches the
        # word exactly: 化工厂 does not match 化工 … 厂.
        should: list[dict[str, Any]] = [
            {"match_phrase": {f"{title}_key": search_key(term)}},
            {"match_phrase": {f"{content}_key": search_key(term)}},
        ]
        if legacy:
            should += [{"match_phrase": {title: term}}, {"match_phrase": {content: term}}]
        must.append({"bool": {"should": should, "minimum_should_match": 1}})
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


def sharing_any_band(bands: Sequence[int]) -> dict[str, Any]:
    """Documents holding any of the band keys (a batch's combined candidate lookup, in filter context)."""
    return {"terms": {"lsh": list(bands)}}


def sharing_bands(bands: Sequence[int], limit: int) -> dict[str, Any]:
    """One candidate lookup: items sharing a band, scored by the number of shared bands (constant-score clauses)."""
    should = [{"constant_score": {"filter": {"term": {"lsh": b}}}} for b in sorted(set(bands))]
    return {
        "query": {"bool": {"should": should, "minimum_should_match": 1}},
        "sort": [{"_score": {"order": "desc"}}, {"stored_seq": {"order": "asc"}}],
        "size": limit,
        "track_total_hits": False,
    }
