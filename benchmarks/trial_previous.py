"""The rule trial as it was on main at c39640a (2026-11-30 11:10 UTC), kept for benchmarks/scale.py to time the
current one beside. Trying a rule on recent stored items while reading as little as possible.

The window is the ``limit`` newest items published since a day. :func:`deciding_terms` names terms only a
text holding one of which can differ from the rule's value on a text without them, and the store's search
finds the items holding them (the suspects):

* a rule false without them (``化工厂 AND 排污``): only the suspects are read and evaluated;
* a rule true without them (``NOT 表扬``): every other item of the window matches without being evaluated;
  the window is read (texts included, for the items shown) but only suspects and shown items are evaluated;
* no usable terms (a digit run on Elasticsearch, whose search finds whole numbers only): every item is.

Items are read as plain rows (:data:`service.store.base.TextRow`), the masked copy the store keeps for
everyone but admins, and evaluated by the compiled matcher in one pass over each text.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.rules.language import Node, deciding_terms
from service.rules.matcher import CompiledRule, Matcher
from service.store.base import ItemQuery, Store, TextRow

# Matched items listed in the answer (the count covers all of them).
SHOWN = 200
# Items evaluated at once (their texts folded in one pass); the time cap is checked between batches.
BATCH = 1000


@dataclass
class Trial:
    """What a trial found: ``scanned`` items of the window covered, ``candidates`` evaluated."""

    scanned: int = 0
    candidates: int = 0
    matched: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    window: int = 0  # the items the window holds (what ``scanned`` reaches when not stopped early)


def searchable(store: Store, text: str) -> bool:
    """Whether the store's search finds every item holding ``text`` (a phrase of q: no quote, not blank)."""
    return '"' not in text and bool(text.strip()) and store.finds_within_words(text)


def run(store: Store, node: Node, since: datetime, limit: int, masked: bool, deadline: float) -> Trial:
    """Try ``node`` on the ``limit`` newest items published since ``since``; stop at ``deadline`` (monotonic)."""
    # Thousands of rows, folded texts and hits, none of them in a reference cycle: the collections they
    # would trigger find nothing and cost a third of a trial (as in Matcher.build).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(store, node, since, limit, masked, deadline)
    finally:
        if was_enabled:
            gc.enable()


def _run(store: Store, node: Node, since: datetime, limit: int, masked: bool, deadline: float) -> Trial:
    matcher = Matcher.build([CompiledRule("test", "", "normal", node)])
    trial = Trial()
    recent = ItemQuery(date_from=since, masked=masked)
    in_window = store.search(recent.model_copy(update={"size": 1})).total
    trial.window = min(limit, in_window)
    empty_value, terms = deciding_terms(node, lambda text: searchable(store, text))
    if terms is None:
        _walk(trial, matcher, store.iter_texts(recent, limit), None, deadline)
        return trial
    floor = since
    if in_window >= limit:  # the count stops at COUNT_CAP: equal to the limit may mean more
        # The window ends at the limit-th newest item (an item published at that same instant but listed
        # after it may be found too).
        oldest = store.search(recent.model_copy(update={"page": limit, "size": 1})).results
        floor = oldest[0].published_at if oldest and oldest[0].published_at else since
    suspects = _suspects(store, recent.model_copy(update={"date_from": floor}), {t.text for t in terms}, deadline)
    if suspects is None:
        trial.stopped_early = True
    elif empty_value:
        _walk(trial, matcher, store.iter_texts(recent, limit), suspects, deadline)
    else:
        # Newest first, as the window lists them.
        rows = sorted(suspects.values(), key=lambda r: r[2] or since, reverse=True)
        _walk(trial, matcher, (rows[i : i + BATCH] for i in range(0, len(rows), BATCH)), None, deadline)
        trial.scanned = trial.candidates if trial.stopped_early else trial.window
    return trial


def _suspects(store: Store, query: ItemQuery, texts: set[str], deadline: float) -> dict[str, TextRow] | None:
    """The items of ``query`` holding any of ``texts``, by id; None when the deadline passed first."""
    found: dict[str, TextRow] = {}
    for text in sorted(texts):
        for rows in store.iter_texts(query.model_copy(update={"q": f'"{text}"'})):
            if time.monotonic() > deadline:
                return None
            for row in rows:
                found.setdefault(row[0], row)
    return found


def _walk(
    trial: Trial,
    matcher: Matcher,
    pages: Iterator[list[TextRow]],
    suspects: dict[str, TextRow] | None,
    deadline: float,
) -> None:
    """Go through rows in listing order and list the first SHOWN matches with where the rule's terms are.

    Without ``suspects`` every row is evaluated. With them only suspects are, the other rows matching as
    they are (evaluated only when listed, for their highlights); once SHOWN are listed the walk stops and
    the rest of the window is counted from the suspects it did not reach.
    """
    shown = trial.items
    for rows in pages:
        if time.monotonic() > deadline:
            trial.stopped_early = True
            return
        # Evaluated in one batch: every suspect of the page and, while the list is not full, enough others.
        room = SHOWN - len(shown)
        chosen = []
        for row in rows:
            if suspects is None or row[0] in suspects:
                chosen.append(row)
            elif room > 0:
                chosen.append(row)
                room -= 1
        hits_of = dict(zip([r[0] for r in chosen], matcher.match_many([(r[3], r[4]) for r in chosen]), strict=True))
        for item_id, source, published, title, content in rows:
            if suspects is None or suspects.pop(item_id, None) is not None:
                trial.candidates += 1
                hits = hits_of[item_id]
            elif len(shown) < SHOWN:
                # A match without the rule's terms, evaluated for its highlights.
                hits = hits_of.get(item_id) or matcher.match(title, content)
            else:
                _count_rest(trial, matcher, suspects, deadline)
                return
            trial.scanned += 1
            if not hits:
                continue
            trial.matched += 1
            if len(shown) < SHOWN:
                shown.append(
                    {
                        "id": item_id,
                        "title": title,
                        "source": source,
                        "published_at": published.isoformat() if published else None,
                        "highlights": [
                            {"field": h.field, "start": h.start, "end": h.end, "term": h.term}
                            for h in hits[0].highlights
                        ],
                    }
                )


def _count_rest(trial: Trial, matcher: Matcher, suspects: dict[str, TextRow], deadline: float) -> None:
    """Count the matches among the window's items after those walked: all of them but the suspects left
    that the rule is false on (items at the window's last instant beyond it may count among them)."""
    rest = trial.window - trial.scanned
    false = 0
    left = list(suspects.values())
    for start in range(0, len(left), BATCH):
        if time.monotonic() > deadline:
            trial.stopped_early = True
            return
        batch = left[start : start + BATCH]
        trial.candidates += len(batch)
        false += sum(not hits for hits in matcher.match_many([(r[3], r[4]) for r in batch]))
    trial.matched += max(0, rest - false)
    trial.scanned = trial.window
