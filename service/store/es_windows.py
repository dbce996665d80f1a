"""Pages of text searches and deep offset pages read from the newest part of the index, not from all of it.

A page, newest first, needs the first ``offset + size`` matches, and its count the first ``COUNT_CAP + 1``.
Asked of the whole index, two things cost in proportion to the index instead of the page (measured at 1.6M
items on 2 shared cores):

* a deep offset page (page 500 of 20): the node visits segments oldest first, so every segment hands in its
  own newest 10,000 matches before the older ones are dropped (1.3-1.9 s, 0.1-0.3 s in a window);
* a term asked a few times (four): the node's query cache then keeps the term's matches of every large segment,
  computed once over the whole segment, so that search costs several times the others (+0.5-1 s for 居民 or
  问题, growing with the index): the worst round of every common term.

Both are asked of the newest documents only, ``published_at >= since``: on the field the index is sorted by,
that range is a run of document ids per segment found by binary search (nearly free), and it is the cheap
lead that keeps the term out of the cache. ``since`` is placed to hold a few times the matches needed (from
the index's document count and time span); when the window holds more than that need, its first ``offset +
size`` matches are the page (every document outside the window sorts after every one inside: older, or
without a date) and the count is capped as before. Otherwise the window grows by the rate of matches seen,
and after ``WINDOW_TRIES`` tries the whole index is asked as before. The answers are the same either way.

A page after a cursor (``after``) is read from the cursor's publication time down (``published_at <=`` it),
instead of walking past every newer document of each segment (0.7 s at half depth of 1.3M items), and for text
terms from a window below it first; its count is that of page 1, counted as above.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service import clock
from service.store import base
from service.store.es_bulk import BulkWriting
from service.store.es_layout import READ_EXCLUDES
from service.store.es_queries import NEWEST_FIRST

# How long the index's document count and time span are reused for placing windows: they only place them
# (a stale figure costs a try more, never a wrong answer), and asking costs two sorted searches.
_SPREAD_TTL = timedelta(minutes=10)
# Documents newest first passed over when placing windows (see WindowedPages._index_spread).
_SPREAD_SKIP = 50


@dataclass
class Spread:
    """How many documents the items index holds and the time span of their publication (epoch ms)."""

    count: int
    newest: int
    oldest: int
    at: datetime


class WindowedPages(BulkWriting):
    """The page requests of :class:`service.store.elasticsearch.ElasticsearchStore`."""

    # Offsets from here on are read from a window (page 51 of 20 and deeper); shallower pages stop early anyway.
    DEEP_OFFSET = 1000
    # The first window holds about this many times the documents needed when a text term narrows the search
    # (one item in six holds 排污), and when nothing does (deep pages of the list: every document read into a
    # deep page costs, so the window is barely larger than the page's depth); then at most this many tries.
    WINDOW_FIRST = 10
    WINDOW_DENSE = 1.2
    WINDOW_TRIES = 4
    _spread: Spread | None

    @property
    def count_cap(self) -> int:
        """Matches counted before a total says "more than" (base.COUNT_CAP, read when asked: tests lower it)."""
        return base.COUNT_CAP

    def _index_spread(self) -> Spread | None:
        """The document count and publication span of the index (None when it has no dated document).

        "Newest" is the time of the ``_SPREAD_SKIP``-th newest document, so a few items dated years ahead (a
        source's typo) neither stretch the span nor leave the first window empty.
        """
        now = clock.now()
        if self._spread is not None and now - self._spread.at < _SPREAD_TTL:
            return self._spread
        newest_first = {"size": _SPREAD_SKIP, "sort": NEWEST_FIRST, "track_total_hits": True, "_source": False}
        # A min aggregation, not a search sorted oldest first: against the index order that one costs seconds.
        oldest_first = {"size": 0, "track_total_hits": False, "aggs": {"oldest": {"min": {"field": "published_at"}}}}
        with self._call("search"):
            resp = self._es.msearch(index=self.alias, searches=[{}, newest_first, {}, oldest_first])
        answers = resp["responses"]
        for answer in answers:
            self._check_doc(answer, "msearch")
            if "error" in answer:
                return None  # the page request itself says what is wrong
        count = int(answers[0]["hits"]["total"]["value"])
        newest = _time(answers[0]["hits"]["hits"][-1:])
        value = answers[1]["aggregations"]["oldest"]["value"]
        oldest = int(value) if value is not None else None
        self._spread = None
        if count > _SPREAD_SKIP and newest is not None and oldest is not None:
            self._spread = Spread(count=count - _SPREAD_SKIP, newest=newest, oldest=oldest, at=now)
        return self._spread

    def _page(self, query: dict[str, Any], size: int, paging: dict[str, Any], first: float) -> dict[str, Any]:
        """The node's answer for one page of ``query`` newest first, counted up to ``count_cap``.

        ``first``: try the newest part of the index first (see the module doc), in a window of that many times
        the documents needed (0: ask the whole index at once); the answer is the same.
        """
        if "search_after" in paging:
            return self._keyset_page(query, size, paging["search_after"], first)
        need = max(self.count_cap, int(paging.get("from_", 0)) + size)
        seen: list[int] = []
        for since in self._sinces(need, None, seen, first) if first else ():
            resp = self._search_page(_within(query, since, None), size, paging, track=need + 1)
            matched = int(resp["hits"]["total"]["value"])
            if matched > need:
                # More than needed in the window: the page is complete and the total is past the cap.
                resp["hits"]["total"] = {"value": self.count_cap, "relation": "gte"}
                return resp
            seen.append(matched)
        return self._search_page(query, size, paging, track=self.count_cap)

    def _keyset_page(self, query: dict[str, Any], size: int, after: list[Any], first: float) -> dict[str, Any]:
        """The page after a cursor: read from the cursor's publication time down (a range of document ids per
        segment instead of a walk over every newer document), for text terms first from a window below it."""
        upper = after[0] if _dated(after[0]) else None
        paging = {"search_after": after}
        resp: dict[str, Any] | None = None
        seen: list[int] = []
        for since in self._sinces(size, upper, seen, first) if first and upper is not None else ():
            resp = self._search_page(_within(query, since, upper), size, paging, track=False)
            if len(resp["hits"]["hits"]) >= size:
                break
            seen.append(len(resp["hits"]["hits"]))
            resp = None
        if resp is None and upper is not None:
            resp = self._search_page(_within(query, None, upper), size, paging, track=False)
            if len(resp["hits"]["hits"]) < size:
                resp = None  # the page runs on into the undated documents, which no range holds
        if resp is None:
            resp = self._search_page(query, size, paging, track=False)
        # The count is the whole query's, as page 1 counts it (search_after never narrowed it).
        resp["hits"]["total"] = self._page(query, 0, {}, first)["hits"]["total"]
        return resp

    def _sinces(self, need: int, upper: int | None, seen: list[int], first: float) -> Iterator[int]:
        """Lower publication bounds (epoch ms) of growing windows ending at ``upper`` (the newest document when
        None), each meant to hold ``need`` matches; ``seen`` holds how many the caller found in each."""
        spread = self._index_spread()
        if spread is None:
            return
        per_doc = (spread.newest - spread.oldest) / spread.count
        top = spread.newest if upper is None else upper
        docs = int(need * first)
        for _ in range(self.WINDOW_TRIES):
            if docs >= spread.count or per_doc <= 0:
                return
            yield top - int(docs * per_doc)
            # Grow by the rate of matches seen (with a margin), by 2 to 64 times.
            docs = int(docs * min(64.0, max(2.0, 1.5 * need / max(seen[-1] if seen else 0, 1))))

    def _search_page(
        self, query: dict[str, Any], size: int, paging: dict[str, Any], track: int | bool
    ) -> dict[str, Any]:
        with self._call("search"):
            resp = self._es.search(
                index=self.alias,
                query=query,
                sort=NEWEST_FIRST,
                size=size,
                track_total_hits=track,
                # The masked copies and folded keys are three times the text and never shown.
                source_excludes=list(READ_EXCLUDES),
                **paging,
            )
        return resp.body


def _dated(value: Any) -> bool:
    """Whether a sort value is a publication time (an undated document sorts with Long.MIN/MAX_VALUE)."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**62


def _within(query: dict[str, Any], since: int | None, upper: int | None) -> dict[str, Any]:
    """``query`` limited to publication times from ``since`` to ``upper`` (epoch ms, both included)."""
    bounds = {"gte": since, "lte": upper}
    window = {"range": {"published_at": {k: v for k, v in bounds.items() if v is not None}}}
    return {"bool": {"filter": [query, window]}}


def _time(hits: list[dict[str, Any]]) -> int | None:
    """The publication time (epoch ms) of the one hit of a sorted search, if there is one and it is dated."""
    if not hits:
        return None
    value = hits[0]["sort"][0]
    return value if _dated(value) else None
