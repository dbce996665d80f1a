"""The rule trial as it was on main at 20c6507 (2026-11-30 14:00 UTC), kept for benchmarks/scale.py to time the
current one beside (on either store; on Elasticsearch with the mget it read texts by). Trying a rule on recent
stored items (``POST /api/v1/rules/test-recent``) while reading as little as possible.

The window is the ``limit`` newest items published since a day. Counts are those live matching would alert
on: the rule runs on the masked text (service.matching.engine), so the trial does too, for every role; only
the titles listed to an admin are the original ones.

:func:`deciding_terms` names terms only a text holding one of which can differ from the rule's value on a
text without them, and the store's search finds the items holding them (the suspects) as ids, no text read:

* when the store's search finds every term of the rule exactly (SQLite; one Han character on Elasticsearch)
  and the rule is a combination of unscoped terms, the ids say which terms each suspect holds and so the
  rule's value on it: ``NOT 问题`` on 10,000 items is counted from the ids of those holding 问题;
* otherwise the suspects' texts are read and evaluated: those on the listed part of the window, then the
  rest for the count, all of them up to ``SAMPLE``, beyond that ``SAMPLE`` spread over them, the count
  extrapolated and marked ``estimated``;
* a rule false on a text without its terms (``化工厂 AND 排污``) matches only suspects; a rule true on it
  (``NOT 表扬``) matches every other item of the window without reading it;
* no usable terms (a digit run on Elasticsearch, whose search finds whole numbers only): every item of the
  window is a suspect.

Only the items listed (at most ``SHOWN``) and the suspects evaluated are read as texts
(:data:`service.store.base.TextRow`, the stored masked copy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.rules.hits import Hit
from service.rules.language import FIELDS, And, Near, Node, Not, Or, Term, deciding_terms, iter_terms
from service.rules.matcher import CompiledRule, Matcher
from service.store.base import IdRow, ItemQuery, Store, TextRow
from service.store.elasticsearch import ElasticsearchStore, _text_row

# Matched items listed in the answer (the count covers all of them).
SHOWN = 200
# Items whose texts are read and evaluated at once (the time cap is checked between steps).
STEP = 250
# Suspects whose value only their text tells, evaluated for the count beyond the listed part: all of them up
# to this many, else this many spread over them and the count extrapolated (``Trial.estimated``).
SAMPLE = 1000
# Texts evaluated while looking for the items to list; past it the list stays shorter and the rest is counted.
WALK_TEXTS = 2000


@dataclass
class Trial:
    """What a trial found: ``scanned`` items of the window covered, ``candidates`` decided one by one."""

    scanned: int = 0
    candidates: int = 0
    matched: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    window: int = 0  # the items the window holds (what ``scanned`` reaches when not stopped early)
    # ``matched`` extrapolated from SAMPLE suspects (their texts read) instead of counted one by one.
    estimated: bool = False


class _Stopped(Exception):
    """The deadline passed."""


def searchable(store: Store, text: str) -> bool:
    """Whether the store's search finds every item holding ``text`` (a phrase of q: no quote, not blank)."""
    return '"' not in text and bool(text.strip()) and store.finds_within_words(text)


def by_presence(node: Node) -> bool:
    """Whether ``node``'s value on a text follows from which of its terms the text holds (anywhere)."""
    if isinstance(node, Term):
        return node.fields == FIELDS
    if isinstance(node, Near):
        return False
    if isinstance(node, Not):
        return by_presence(node.child)
    return all(by_presence(child) for child in node.children)


def holds(node: Node, present: set[str]) -> bool:
    """The value of a :func:`by_presence` rule on a text holding exactly the terms ``present``."""
    if isinstance(node, Term):
        return node.text in present
    if isinstance(node, Not):
        return not holds(node.child, present)
    if isinstance(node, And):
        return all(holds(child, present) for child in node.children)
    if isinstance(node, Or):
        return any(holds(child, present) for child in node.children)
    raise TypeError(f"not decided by presence: {node!r}")


def texts_of(store: Store, handles: Sequence[Any], masked: bool) -> dict[Any, TextRow]:
    """``store.texts_of`` as it was at 20c6507: on Elasticsearch an mget of the ids (now a search on them)."""
    if not isinstance(store, ElasticsearchStore):
        return store.texts_of(handles, masked)
    fields = ["id", "source", "published_at", "title", "content"]
    if masked:
        fields[3:] = ["title_masked", "content_masked", *(["title", "content"] if store._legacy_terms() else [])]
    ids = list(handles)
    found: dict[Any, TextRow] = {}
    for start in range(0, len(ids), 1000):
        resp = store._es.mget(index=store.alias, ids=ids[start : start + 1000], source_includes=fields)
        for doc in resp["docs"]:
            if doc.get("found"):
                found[doc["_id"]] = _text_row(doc["_source"], masked)
    return found


@dataclass
class _Run:
    store: Store
    matcher: Matcher
    deadline: float
    trial: Trial
    # The value of the rule on an item when known without its text (None: evaluate the text).
    value_of: Callable[[Any], bool | None]
    rows: dict[Any, tuple[TextRow, list[Hit]]] = field(default_factory=dict)
    listed: list[Any] = field(default_factory=list)
    walk_texts: int = 0

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Stopped

    def evaluate(self, ids: list[Any], step: int = STEP) -> None:
        """Read and evaluate the texts of ``ids`` (store handles; those not yet read), ``step`` at a time."""
        ids = [i for i in ids if i not in self.rows]
        for start in range(0, len(ids), step):
            self.check()
            rows = texts_of(self.store, ids[start : start + step], masked=True)
            hits = self.matcher.match_many([(r[3], r[4]) for r in rows.values()])
            self.rows.update({h: (r, found) for (h, r), found in zip(rows.items(), hits, strict=True)})

    def value(self, item_id: Any) -> bool:
        known = self.value_of(item_id)
        if known is not None:
            return known
        found = self.rows.get(item_id)
        return bool(found and found[1])  # an item deleted since the search is no match

    def walk(self, pages: Iterable[list[Any]], seen: set[Any]) -> bool:
        """Go through ids in listing order, counting matches and listing the first SHOWN; True when the walk
        stopped because the list is full (or the texts it may read are spent), the rest left to count."""
        trial = self.trial
        for page in pages:
            for start in range(0, len(page), STEP):
                part = page[start : start + STEP]
                self.check()
                unknown = [i for i in part if self.value_of(i) is None]
                self.evaluate(unknown)
                self.walk_texts += len(unknown)
                for item_id in part:
                    seen.add(item_id)
                    trial.scanned += 1
                    if self.value(item_id):
                        trial.matched += 1
                        self.listed.append(item_id)
                        if len(self.listed) >= SHOWN:
                            return True
                if self.walk_texts >= WALK_TEXTS:
                    return True
        return False

    def count_true(self, ids: list[Any]) -> int:
        """How many of ``ids`` the rule holds on: counted, or estimated from SAMPLE of them."""
        known = [self.value_of(i) for i in ids]
        count = sum(1 for v in known if v)
        unknown = [i for i, v in zip(ids, known, strict=True) if v is None]
        # Read in few requests (one mget on Elasticsearch): each costs a round trip on a loaded machine.
        if len(unknown) <= SAMPLE:
            self.evaluate(unknown, SAMPLE)
            return count + sum(1 for i in unknown if self.value(i))
        step = len(unknown) / SAMPLE
        sample = [unknown[int(k * step)] for k in range(SAMPLE)]
        self.evaluate(sample, SAMPLE)
        self.trial.estimated = True
        return count + round(sum(1 for i in sample if self.value(i)) * len(unknown) / SAMPLE)

    def show(self, original_titles: bool) -> None:
        """The listed items with where the rule's terms are (from the masked text; lengths are kept)."""
        self.evaluate(self.listed)
        titles: dict[Any, str] = {}
        if original_titles and self.listed:
            titles = {h: r[3] for h, r in texts_of(self.store, self.listed, masked=False).items()}
        for item_id in self.listed:
            found = self.rows.get(item_id)
            if found is None:
                continue
            (real_id, source, published, title, _content), hits = found
            self.trial.items.append(
                {
                    "id": real_id,
                    "title": titles.get(item_id, title),
                    "source": source,
                    "published_at": published.isoformat() if published else None,
                    "highlights": [
                        {"field": h.field, "start": h.start, "end": h.end, "term": h.term}
                        for h in (hits[0].highlights if hits else ())
                    ],
                }
            )


def run(store: Store, node: Node, since: datetime, limit: int, deadline: float, original_titles: bool = False) -> Trial:
    """Try ``node`` on the ``limit`` newest items published since ``since``; stop at ``deadline`` (monotonic).

    ``original_titles``: list the titles as published (for admins); counts are always those of the masked text.
    """
    trial = Trial()
    recent = ItemQuery(date_from=since, masked=True)
    in_window = store.search(recent.model_copy(update={"size": 1})).total
    trial.window = min(limit, in_window)
    matcher = Matcher.build([CompiledRule("test", "", "normal", node)])
    state = _Run(store, matcher, deadline, trial, lambda _: None)
    empty_value, terms = deciding_terms(node, lambda text: searchable(store, text))
    try:
        if terms is None:
            # Every item of the window may match: each is a suspect whose text tells.
            _suspects_walk(state, [i for page in store.iter_ids(recent, limit) for i, _ in page])
        else:
            around = _window(store, recent, limit, in_window)
            _decide(state, node, terms, empty_value, around, store.iter_ids(recent, limit))
    except _Stopped:
        trial.stopped_early = True
        # What was listed before the cap is still shown (at most SHOWN texts read past it).
        state.deadline = float("inf")
    state.show(original_titles)
    return trial


def _window(store: Store, recent: ItemQuery, limit: int, in_window: int) -> ItemQuery:
    """The window's query: ``recent`` from the publication time of its limit-th newest item on (an item
    published at that same instant but listed after it may be found too)."""
    if in_window < limit:  # the count stops at COUNT_CAP: equal to the limit may mean more
        return recent
    oldest = store.search(recent.model_copy(update={"page": limit, "size": 1})).results
    if oldest and oldest[0].published_at:
        return recent.model_copy(update={"date_from": oldest[0].published_at})
    return recent


def _decide(
    state: _Run,
    node: Node,
    terms: list[Term],
    empty_value: bool,
    around: ItemQuery,
    window: Iterator[list[IdRow]],
) -> None:
    """Find the suspects (handles) and decide what can be decided without their texts; then list and count."""
    store, trial = state.store, state.trial
    every = {t.text for t, _ in iter_terms(node)}
    deciding = {t.text for t in terms}
    keys: dict[Any, tuple[Any, ...]] = {}
    holders = {text: _holding(state, around, text, keys) for text in sorted(deciding)}
    # Few suspects: their texts are read and evaluated (cheaper than looking up the rule's other terms). Many:
    # when the search finds every term exactly, the terms each suspect holds decide the rule without its text.
    presence = (
        len(keys) > SAMPLE and by_presence(node) and all(searchable(store, t) and store.finds_exactly(t) for t in every)
    )
    values: dict[Any, bool] = {}
    if presence:
        for text in sorted(every - deciding):
            holders[text] = _holding(state, around, text, None)
        memo: dict[frozenset[str], bool] = {}
        for handle in keys:
            present = frozenset(text for text, held in holders.items() if handle in held)
            if present not in memo:
                memo[present] = holds(node, set(present))
            values[handle] = memo[present]

    def value_of(handle: Any) -> bool | None:
        if handle not in keys:
            return empty_value
        return values[handle] if presence else None

    state.value_of = value_of
    order = sorted(keys, key=keys.__getitem__, reverse=True)
    if not empty_value:
        # Only suspects can match: walk them in listing order.
        _suspects_walk(state, order)
    else:
        # Every item of the window without a deciding term matches: walk the window's ids until the list is
        # full, then count the rest from the suspects not reached.
        seen: set[Any] = set()
        if state.walk(([i for i, _ in page] for page in window), seen):
            rest = [i for i in order if i not in seen]
            outside = max(0, trial.window - trial.scanned - len(rest))
            trial.matched += outside + state.count_true(rest)
        trial.scanned = trial.window
    trial.candidates = len(order) if presence else len(state.rows)


def _holding(state: _Run, around: ItemQuery, text: str, keys: dict[Any, tuple[Any, ...]] | None) -> set[Any]:
    """The handles of the window's items holding ``text``; their listing keys into ``keys`` (the suspects)."""
    held: set[Any] = set()
    for page in state.store.iter_ids(around.model_copy(update={"q": f'"{text}"'})):
        state.check()
        for handle, key in page:
            held.add(handle)
            if keys is not None:
                keys[handle] = key
    return held


def _suspects_walk(state: _Run, order: list[Any]) -> None:
    """Walk items that may match (all of them evaluated or decided), listing the first; count the rest."""
    seen: set[Any] = set()
    pages: Iterator[list[Any]] = (order[i : i + STEP] for i in range(0, len(order), STEP))
    state.walk(pages, seen)
    rest = order[len(seen) :]
    state.trial.matched += state.count_true(rest)
    state.trial.candidates = len(state.rows)
    state.trial.scanned = state.trial.window
