"""Item identity and repost detection: the one home of near-duplicate logic.

A repost is grouped with the item it copies even when it was edited the usual ways: a new headline, a
repost marker (【转】), attribution lines (转自/来源/原标题/本报讯/记者…), the outlet's own name put in place
of 本报, boilerplate, a few changed sentences, or only the first part of the text kept. Three steps:

1. ``strip_repost_noise`` strips what reposts change without changing the story, then whitespace and punctuation.
2. ``signature`` builds MinHash LSH band keys (datasketch's, computed with numpy in service.items.minhash)
   of the whole text and of its lead; the store keeps them (``Item.lsh``) and answers "which stored items
   share a band with these" for a whole batch at once (``Store.lsh_candidates``), so grouping works across
   processes and on every backend.
3. ``compare`` verifies each candidate exactly: Jaccard similarity or containment (a truncated repost is
   contained in the original), vetoed when the two name different dates/figures or different places
   (template notices, the same complaint about another street).

Thresholds were tuned on tests/data/reposts.jsonl (benchmarks/reposts.py prints precision and recall).
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

from service.items.minhash import (
    EMPTY,
    Shingles,
    band_keys,
    ids_missing_from,
    minhash,
    shared_ids,
    shingles,
    shingles_and_lead,
)
from service.items.places import Gazetteer, gazetteer
from service.items.repost_noise import strip_attribution, strip_repost_noise
from service.store.base import Item, StoreUnavailable

if TYPE_CHECKING:
    from service.store.base import Store


# Figures that name what a text is about: dates, times, amounts, numbers of households, phone numbers.
_FIGURE = re.compile(r"\d+(?:[.:]\d+)*(?:年\d+月\d+日|年\d+月|月\d+日|年|月|日|号|时|点|分)?")


# -- exact comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparable:
    """One item reduced to what repost detection compares."""

    title: str
    body: str
    body_shingles: Shingles
    # The item's title and content as given.
    original: tuple[str, str] = field(default=("", ""), repr=False)
    # The hashes of the shingles of the body's first LEAD characters (see ``signature``), repeats kept.
    lead_hashes: np.ndarray | None = field(default=None, repr=False, compare=False)
    # The title's shingles (``title`` when kept apart from the body), and the ids of those the body does not
    # hold (sorted). The text's shingles are the body's and these: their union is not kept, it would double
    # what a remembered comparable holds (see _Recent), and its size is all that comparing needs.
    title_shingles: Shingles = field(default=EMPTY, repr=False, compare=False)
    title_only: np.ndarray = field(default_factory=lambda: EMPTY.ids, repr=False, compare=False)

    @property
    def text(self) -> str:
        return self.title + self.body

    @property
    def size(self) -> int:
        """The number of distinct shingles of the text (title and body)."""
        return len(self.body_shingles) + len(self.title_only)

    @property
    def shingles(self) -> Shingles:
        """The text's distinct shingles (made on each call: comparing and signing use the parts)."""
        return self.title_shingles | self.body_shingles if len(self.title_shingles) else self.body_shingles

    @property
    def weight(self) -> int:
        """About the bytes this comparable holds (arrays and strings), for the budget of _Recent."""
        body, title = self.body_shingles, self.title_shingles
        held = sum(a.nbytes for a in (body.ids, body.hashes, title.ids, title.hashes, self.title_only))
        if self.lead_hashes is not None:
            held += self.lead_hashes.nbytes
        # str of CJK text: two bytes a character (the given texts and the normalised body).
        return held + 2 * (len(self.original[0]) + len(self.original[1]) + len(self.body) + len(self.title))

    # The rest is needed only for pairs similar enough to be checked for vetoes: most items never are.
    @cached_property
    def raw(self) -> str:
        """The text as segmented for place names (attribution stripped, punctuation kept)."""
        title, content = self.original
        return strip_attribution(f"{title}\n{content}")

    @cached_property
    def figures(self) -> Counter[str]:
        """Dates, times, amounts and numbers named in the text."""
        return Counter(_FIGURE.findall(self.raw))

    @cached_property
    def places(self) -> frozenset[tuple[str, str]]:
        """Place names (jieba)."""
        return gazetteer().names(self.raw)


def comparable(title: str, content: str) -> Comparable:
    """Normalise title and body of one item for comparison (remembered for recently seen texts)."""
    return _recent.get(title, content)


def _comparable(title: str, content: str) -> Comparable:
    t = strip_repost_noise(title)
    b = strip_repost_noise(content)
    # A headline that only repeats the start of the body adds nothing (and some sites have no title). A
    # body that opens with its headline (【headline】text, as posts do) starts after it, so its lead is
    # the lead of the text it copies.
    if t and b.startswith(t) and len(b) > len(t):
        b = b[len(t) :]
    body = b if b else t
    title_part = "" if not b or b.startswith(t) else t
    body_shingles, lead_hashes = shingles_and_lead(body, LEAD)
    title_shingles, title_only = EMPTY, EMPTY.ids
    if title_part:
        title_shingles = shingles(title_part)
        title_only = ids_missing_from(title_shingles.ids, body_shingles.ids)
    return Comparable(
        title=title_part,
        body=body,
        body_shingles=body_shingles,
        original=(title, content),
        lead_hashes=lead_hashes,
        title_shingles=title_shingles,
        title_only=title_only,
    )


class _Recent:
    """Comparables of the texts seen last, up to about ``budget`` bytes (``Comparable.weight``).

    A crawled item is compared when the dedupe step signs it, again when its batch is grouped, and as a
    candidate of the items stored after it: normalising it once saves most of repost detection's time.
    Cleared when the process's gazetteer is replaced (a comparable remembers the places it found).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self.entries: OrderedDict[tuple[str, str], Comparable] = OrderedDict()
        self.lock = threading.Lock()
        self.places: Gazetteer | None = None

    def get(self, title: str, content: str) -> Comparable:
        key = (title, content)
        places = gazetteer()
        with self.lock:
            if places is not self.places:
                self.entries.clear()
                self.size, self.places = 0, places
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
                return found
        made = _comparable(title, content)
        with self.lock:
            if key not in self.entries:
                self.entries[key] = made
                self.size += made.weight
            while self.size > self.budget and self.entries:
                _, old = self.entries.popitem(last=False)
                self.size -= old.weight
        return made


# Bytes of comparables (``Comparable.weight``) kept: about 3,000 typical items of 1,200 characters (16 KB each,
# 17 KB measured with tracemalloc). A first crawl of a source meets its own earlier items as candidates all
# through: with room for 850 items (2026-11-30) half of them were normalised again, a fifth of the CPU of
# Elasticsearch's ingest benchmark.
_recent = _Recent(budget=48_000_000)


@dataclass(frozen=True)
class Verdict:
    duplicate: bool
    reason: str
    jaccard: float
    containment: float


# Tuned on tests/data/reposts.jsonl (see BENCHMARKS.md): a repost with five changed sentences of twelve
# keeps Jaccard above 0.45; a truncated repost keeps nearly all its shingles inside the original.
JACCARD_MIN = 0.40
CONTAINMENT_MIN = 0.80
# A contained text shorter than this many shingles is a phrase, not a repost ("小区停水" is in many texts).
CONTAINMENT_MIN_SHINGLES = 20
# More figures of the shorter text than this share missing from the other: a different notice or event.
FIGURE_CONFLICT = 0.34


def _is_date(token: str) -> bool:
    return any(ch in token for ch in "年月日号")


def _figure_conflict(a: Counter[str], b: Counter[str]) -> bool:
    # A date replaced by another date: the next notice of a template, not a repost (a repost may add a
    # date where the original said 昨天, or drop one when cut; it does not swap them).
    dates_a = {t for t in a if _is_date(t)}
    dates_b = {t for t in b if _is_date(t)}
    # Only days count as swapped (a month named in passing, 10月份报修4次, is no event date), and one day
    # written two ways is one day (24日 / 11月24日).
    days_a = {t for t in dates_a if t[-1] in "日号"}
    days_b = {t for t in dates_b if t[-1] in "日号"}

    def unmatched(days: set[str], others: set[str]) -> bool:
        return any(not any(d.endswith(o) or o.endswith(d) for o in others) for d in days)

    if unmatched(days_a, days_b) and unmatched(days_b, days_a):
        return True
    # Other figures (amounts, house numbers, times, phone numbers) are compared by share; a date only one
    # side names is not counted (checked above: one cut repost keeps the date another repost dropped).
    a = Counter({t: n for t, n in a.items() if t not in dates_a})
    b = Counter({t: n for t, n in b.items() if t not in dates_b})
    small, large = (a, b) if sum(a.values()) <= sum(b.values()) else (b, a)
    total = sum(small.values())
    if not total:
        return False
    missing = sum((small - large).values())
    return missing >= 1 and missing / total > FIGURE_CONFLICT


CONFLICT_FIGURES = "日期或数字不同"
CONFLICT_PLACES = "地点不同"
CONFLICTS = (CONFLICT_FIGURES, CONFLICT_PLACES)


def _place_conflict(a: Comparable, b: Comparable) -> bool:
    # Each names a place the other text does not mention at all (another estate, road or district; the
    # levels need not match: 桂香社区 against 金桂苑): the same complaint about another place. A cut or
    # edited repost only lacks places; it does not bring its own. Looked up in the other's text, not in
    # its extracted places, so that a name segmented differently there (御景湾 / 景湾小区) still counts.
    return any(name not in b.raw for _, name in a.places) and any(name not in a.raw for _, name in b.places)


def compare(a: Comparable, b: Comparable) -> Verdict:
    """Whether ``b`` is a repost of ``a`` (or the other way round), with the reason in Chinese."""
    size_a, size_b = a.size, b.size
    if not size_a or not size_b:
        return Verdict(False, "无正文", 0.0, 0.0)
    # The bodies' shared shingles, counted once, serve both measures: a text's shingles are its body's plus
    # its title-only ones, four disjoint parts, and the three parts with a title in them are small.
    contained = shared_ids(a.body_shingles.ids, b.body_shingles.ids)
    inter = contained
    if len(a.title_only) or len(b.title_only):
        inter += shared_ids(a.body_shingles.ids, b.title_only) + shared_ids(a.title_only, b.body_shingles.ids)
        inter += shared_ids(a.title_only, b.title_only)
    jaccard = inter / (size_a + size_b - inter)
    small = a if len(a.body_shingles) <= len(b.body_shingles) else b
    containment = contained / len(small.body_shingles) if small.body_shingles else 0.0
    similar = jaccard >= JACCARD_MIN
    is_contained = containment >= CONTAINMENT_MIN and len(small.body_shingles) >= CONTAINMENT_MIN_SHINGLES
    if not (similar or is_contained):
        return Verdict(False, "文字不同", jaccard, containment)
    if _figure_conflict(a.figures, b.figures):
        return Verdict(False, CONFLICT_FIGURES, jaccard, containment)
    # Places can differ only where the texts differ: when one text is inside the other, skip jieba.
    if inter < size_a and inter < size_b and _place_conflict(a, b):
        return Verdict(False, CONFLICT_PLACES, jaccard, containment)
    reason = f"转载（相似度 {jaccard:.2f}）" if similar else f"节选转载（{containment:.0%} 文字包含在原文中）"
    return Verdict(True, reason, jaccard, containment)


# -- MinHash LSH signature ------------------------------------------------------------------------

NUM_PERM = 60
# Bands x rows of the whole-text signature: candidates from Jaccard ~0.3 up (S-curve (1/b)^(1/r) ~ 0.42).
BANDS, ROWS = 20, 3
# The lead (first LEAD characters of the body) gets its own bands so that a repost keeping only the
# first part of a long text still shares bands with it, whatever its length.
LEAD = 80
LEAD_BANDS, LEAD_ROWS = 8, 2
LEAD_PERM = LEAD_BANDS * LEAD_ROWS


def signature(c: Comparable) -> list[int]:
    """LSH band keys (signed 64-bit) of the whole text and of the lead; empty for an empty text."""
    if not c.size:
        return []
    # A MinHash is a minimum per permutation: over the body's and the title's hashes together (a shingle in
    # both counted twice changes no minimum) it is the MinHash of the text's shingles, without their union.
    hashes = c.body_shingles.hashes
    if len(c.title_shingles):
        hashes = np.concatenate([hashes, c.title_shingles.hashes])
    keys = band_keys(minhash(hashes, NUM_PERM, 1), BANDS, ROWS, b"t")
    if min(len(c.body), LEAD) >= LEAD // 2:
        lead = c.lead_hashes if c.lead_hashes is not None else shingles(c.body[:LEAD]).hashes
        keys += band_keys(minhash(lead, LEAD_PERM, 2), LEAD_BANDS, LEAD_ROWS, b"l")
    return keys


def warm_up() -> None:
    """Build what signing the first item would build: the NFKC table, the CRC-32 tables of shingles and the
    MinHash permutations (numpy's random module included). A crawl host does it once before it forks its
    crawls; left to each forked crawl, it was about 0.3 s of CPU of every crawl of a small source."""
    signature(_comparable("预热标题", "预热：Ｗａｒｍ-up，" + "同一段样本正文，" * LEAD))


def item_comparable(item: Item) -> Comparable:
    return comparable(item.title, item.content)


def with_signature(item: Item) -> Item:
    """The item with its LSH band keys set (the crawl's dedupe step signs each item once, before batching)."""
    return item.model_copy(update={"lsh": signature(item_comparable(item))})


def backfill_bands(store: Store, batch_size: int = 500) -> int:
    """Write the LSH band keys of items stored without them (before the band index existed); how many.

    Part of ``yuqing init``: until then such items are invisible to repost detection, so a repost of an
    old item would open a second ticket. Batched: one read and one write per ``batch_size`` items.
    """
    done = 0
    for batch in store.iter_without_bands(batch_size):
        store.set_bands({item.id: signature(item_comparable(item)) for item in batch})
        done += len(batch)
    return done


# -- grouping a batch of new items into events --------------------------------------------------------

CANDIDATES_PER_ITEM = 50


@dataclass
class Grouping:
    """What ``assign_events`` decided for one item."""

    item_id: str
    event_id: str
    duplicate_of: str | None = None
    reason: str | None = None


def _first(item: Item) -> tuple[str, str]:
    return ((item.stored_at or item.fetched_at).isoformat(), item.id)


def assign_events(store: Store, items: Sequence[Item]) -> tuple[list[Item], list[Grouping]]:
    """Give each item its LSH keys and the event of the earliest stored or earlier-in-batch repost it copies.

    One store round trip for the whole batch. A re-crawled item keeps the event it was put in. When the
    store is unreachable the items are grouped within the batch only (their writes are spooled). Items
    that already carry their keys (signed by the crawl's dedupe step, see ``with_signature``) keep them.
    """
    prepared = [(item, item_comparable(item)) for item in items]
    signed = [item if item.lsh else item.model_copy(update={"lsh": signature(c)}) for item, c in prepared]
    try:
        candidates = store.lsh_candidates({i.id: i.lsh for i in signed if i.lsh}, limit=CANDIDATES_PER_ITEM)
    except StoreUnavailable:
        candidates = {}
    out: list[Item] = []
    decisions: list[Grouping] = []
    # Earlier items of this batch by band key: the store does not have them yet.
    earlier: dict[int, list[int]] = {}  # band key -> positions in ``placed``
    placed: list[tuple[Item, Comparable]] = []
    cache: dict[str, Comparable] = {}
    for item, (_, comp) in zip(signed, prepared, strict=True):
        found = candidates.get(item.id, [])
        same = next((s for s in found if s.id == item.id and s.event_id), None)
        decision = Grouping(item.id, item.id)
        if same is not None:
            decision = Grouping(item.id, same.event_id or same.id)
        else:
            # Verdicts per event: an event any of whose members names another place or date is not
            # joined, even when a cut repost without those details resembles another member.
            by_event: dict[str, list[tuple[Item, Verdict]]] = {}
            for other in found:
                if other.id == item.id:
                    continue
                other_comp = cache.get(other.id)
                if other_comp is None:
                    other_comp = cache[other.id] = item_comparable(other)
                by_event.setdefault(other.event_id or other.id, []).append((other, compare(comp, other_comp)))
            best: tuple[float, tuple[str, str], Item, Verdict] | None = None
            for members in by_event.values():
                if any(v.reason in CONFLICTS for _, v in members):
                    continue
                for other, verdict in members:
                    if verdict.duplicate:
                        score = max(verdict.jaccard, verdict.containment)
                        rank = (-score, _first(other))
                        if best is None or rank < (best[0], best[1]):
                            best = (-score, _first(other), other, verdict)
            if best is not None:
                first, verdict = best[2], best[3]
                decision = Grouping(item.id, first.event_id or first.id, first.id, verdict.reason)
            else:
                # Earlier items by band key, then by position, each once: gathered in C, not per band in Python.
                sharing = dict.fromkeys(chain.from_iterable(earlier.get(key, ()) for key in item.lsh))
                seen: set[str] = set()
                for position in sharing:
                    other, other_comp = placed[position]
                    if other.id in seen or other.id == item.id:
                        continue
                    seen.add(other.id)
                    verdict = compare(comp, other_comp)
                    if verdict.duplicate:
                        decision = Grouping(item.id, other.event_id or other.id, other.id, verdict.reason)
                        break
        grouped = item.model_copy(update={"event_id": decision.event_id})
        out.append(grouped)
        decisions.append(decision)
        for key in item.lsh:
            earlier.setdefault(key, []).append(len(placed))
        placed.append((grouped, comp))
    return out, decisions


@dataclass(frozen=True)
class EventLink:
    """An item that is also a repost of an item of another event than its own: the two events may be one."""

    item_id: str
    event_id: str  # the other event
    other_item: str  # the item of that event it copies
    reason: str


def linked_events(store: Store, items: Sequence[Item]) -> list[EventLink]:
    """Other events each stored item is a repost of (no place or date of that event conflicting).

    ``assign_events`` puts an item into one event; when it copies items of two events (say two excerpts of
    one report crawled before the report), the second is returned here, so that matching can suggest
    merging their tickets ("可能是同一事件") instead of merging silently. One store round trip.
    """
    prepared = {item.id: (item, item_comparable(item)) for item in items}
    bands = {i: signature(c) for i, (_, c) in prepared.items()}
    try:
        candidates = store.lsh_candidates({i: b for i, b in bands.items() if b}, limit=CANDIDATES_PER_ITEM)
    except StoreUnavailable:
        return []
    out: list[EventLink] = []
    for item_id, found in candidates.items():
        item, comp = prepared[item_id]
        own = item.event_id or item.id
        by_event: dict[str, list[tuple[Item, Verdict]]] = {}
        for other in found:
            event = other.event_id or other.id
            if other.id == item_id or event == own:
                continue
            by_event.setdefault(event, []).append((other, compare(comp, item_comparable(other))))
        for event, members in sorted(by_event.items()):
            if any(v.reason in CONFLICTS for _, v in members):
                continue
            hits = [(o, v) for o, v in members if v.duplicate]
            if hits:
                other, verdict = max(hits, key=lambda pair: max(pair[1].jaccard, pair[1].containment))
                out.append(EventLink(item_id, event, other.id, verdict.reason))
    return out
