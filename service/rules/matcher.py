"""The multi-pattern matcher: the terms that select rules in one Aho-Corasick automaton.

An item's title and content are folded and scanned once each; the found terms pick the candidate rules
(for each rule a small set of its terms, at least one of which must be present for it to match, chosen
to be the rarest among the rules), and only those are evaluated, their other terms looked up then. Rules
that hold on an empty text (``NOT 招聘``) are tracked the other way round: they hit unless a term that
could falsify them is present.
"""

from __future__ import annotations

import codecs
import gc
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any

import ahocorasick
import numpy as np

from service.folding import _EXPANDS, _U16, _UNSAFE, _WIDE, Folded, _expanded, _fast, fold
from service.rules.hits import Highlight, Hit
from service.rules.language import FIELDS, Node, Term, iter_terms, parse
from service.rules.scan import Evaluator, Scan, compile_node, triggers_of
from service.rules.structured import BOTH_FORMS, structured_node
from service.vocabulary import SEVERITIES, Severity, is_severity

_second = itemgetter(1)
_new_tuple = tuple.__new__


@dataclass(frozen=True)
class CompiledRule:
    """A parsed rule with its owner; what :meth:`Matcher.build` takes."""

    id: str
    department: str
    severity: Severity
    node: Node


def compile_rule(
    rule_id: str,
    department: str,
    severity: str = "normal",
    expr: str | None = None,
    *,
    regions: Sequence[str] = (),
    subjects: Sequence[str] = (),
    events: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> CompiledRule:
    """Parse an expression or build a structured rule; RuleSyntaxError or ValueError when invalid."""
    if not is_severity(severity):
        raise ValueError(f"严重程度 (severity) 应为 {', '.join(SEVERITIES)} 之一，而不是 {severity!r}")
    structured = any((regions, subjects, events, exclude))
    if expr is not None and structured:
        raise ValueError(BOTH_FORMS)
    node = parse(expr) if expr is not None else structured_node(regions, subjects, events, exclude)
    return CompiledRule(rule_id, department, severity, node)


class TooCostly(Exception):
    """A rule test would find more occurrences, or take longer, than its caps allow."""


@dataclass(frozen=True)
class Budget:
    """Caps of one rule test: occurrences of terms found, and seconds spent."""

    max_occurrences: int
    deadline: float  # time.monotonic() value

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TooCostly("time")


@dataclass(frozen=True)
class _Rule:
    rule: CompiledRule
    evaluate: Evaluator
    highlight_terms: tuple[tuple[tuple[int, str], ...], ...]  # per field: (tid, term as written)
    terms: tuple[int, ...]  # every term of the rule
    lazy: tuple[int, ...]  # its terms that are not in the automaton (looked up when it is a candidate)


class Matcher:
    """All rules compiled into one automaton; immutable once built, safe to share between threads."""

    def __init__(
        self,
        rules: list[_Rule],
        automaton: Any,
        terms: list[str],
        triggers: dict[int, tuple[int, ...]],
        always: list[tuple[int, frozenset[int]]],
    ) -> None:
        self._rules = rules
        self._automaton = automaton
        self._terms = terms
        self.triggers_of = triggers
        self._trigger_terms = frozenset(triggers)
        # Rules that hold on an empty text hit unless a term that could falsify them occurs: indexed by
        # those terms, so an item costs set operations, not a Python loop over every such rule.
        self._always = frozenset(index for index, _ in always)
        falsifiers: dict[int, list[int]] = {}
        for index, falsifying in always:
            for t in falsifying:
                falsifiers.setdefault(t, []).append(index)
        self._falsifiers = {t: tuple(v) for t, v in falsifiers.items()}
        self._falsifier_terms = frozenset(falsifiers)
        self._index = {r.rule.id: i for i, r in enumerate(rules)}

    @classmethod
    def build(cls, rules: Iterable[CompiledRule]) -> Matcher:
        """Compile ``rules`` (ids must be unique) into a new matcher."""
        # Tens of thousands of small objects would trigger many full collections that find nothing.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return cls._build(list(rules))
        finally:
            if was_enabled:
                gc.enable()

    @classmethod
    def _build(cls, rules: list[CompiledRule]) -> Matcher:
        seen: set[str] = set()
        tid: dict[str, int] = {}
        usage: Counter[int] = Counter()
        rule_terms: list[list[tuple[Term, bool]]] = []
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
            terms = iter_terms(rule.node)
            rule_terms.append(terms)
            usage.update({tid.setdefault(term.text, len(tid)) for term, _ in terms})

        def cost(terms: frozenset[int]) -> int:
            # A term used by many rules is probably common in text too: prefer rare triggers.
            return sum(usage[t] for t in terms)

        parts: list[tuple[CompiledRule, Evaluator, tuple[tuple[tuple[int, str], ...], ...], tuple[int, ...]]] = []
        triggers: dict[int, list[int]] = {}
        always: list[tuple[int, frozenset[int]]] = []
        keys: set[int] = set()  # the terms that select candidates: the automaton holds only these
        for index, (rule, terms) in enumerate(zip(rules, rule_terms, strict=True)):
            highlight_terms = tuple(
                tuple(
                    sorted({(tid[term.text], term.raw) for term, negated in terms if not negated and f in term.fields})
                )
                for f in FIELDS
            )
            own = tuple(sorted({tid[term.text] for term, _ in terms}))
            parts.append((rule, compile_node(rule.node, tid), highlight_terms, own))
            empty_value, trigger_terms = triggers_of(rule.node, tid, cost)
            keys |= trigger_terms
            if empty_value:
                always.append((index, trigger_terms))
            else:
                for t in trigger_terms:
                    triggers.setdefault(t, []).append(index)
        compiled = [
            _Rule(rule, evaluate, highlight_terms, own, tuple(t for t in own if t not in keys))
            for rule, evaluate, highlight_terms, own in parts
        ]
        terms_by_id = list(tid)
        automaton = _automaton({terms_by_id[t]: t for t in keys})
        return cls(compiled, automaton, terms_by_id, {t: tuple(v) for t, v in triggers.items()}, always)

    @property
    def rule_ids(self) -> list[str]:
        """Ids of the compiled rules, in build order."""
        return list(self._index)

    @property
    def term_count(self) -> int:
        """Distinct folded terms of all rules."""
        return len(self._terms)

    @property
    def key_term_count(self) -> int:
        """Distinct folded terms in the automaton (those that select candidate rules)."""
        return len(self._automaton)

    def _scan(self, title: str, content: str, budget: Budget | None = None, automaton: Any = None) -> Scan:
        return self._scan_folded((fold(title), fold(content)), budget, automaton)

    def _scan_folded(self, folded: tuple[Folded, Folded], budget: Budget | None = None, automaton: Any = None) -> Scan:
        complete = automaton is not None
        automaton = automaton if complete else self._automaton
        if not len(automaton):
            found: tuple[set[int], set[int]] = (set(), set())
        elif budget is None:
            found = (
                set(map(_second, automaton.iter(folded[0].text))),
                set(map(_second, automaton.iter(folded[1].text))),
            )
        else:
            found = (set(), set())
            left = budget.max_occurrences
            for field, part in zip(found, folded, strict=True):
                # Short terms on a long text can occur millions of times: take them in slices, with the caps.
                occurrences = automaton.iter(part.text)
                while chunk := list(itertools.islice(occurrences, 65536)):
                    field.update(map(_second, chunk))
                    left -= len(chunk)
                    if left < 0:
                        raise TooCostly("occurrences")
                    budget.check()
        return Scan(folded, found, self._terms, complete)

    def _highlights(self, scan: Scan, rule: _Rule) -> tuple[Highlight, ...]:
        scan.learn(rule.lazy)
        out: list[Highlight] = []
        for fi, terms in enumerate(rule.highlight_terms):
            found = scan.sets[fi]
            field = FIELDS[fi]
            # tuple.__new__ skips the namedtuple's Python-level __new__: highlights are many.
            part = [
                _new_tuple(Highlight, (field, start, end, raw))
                for t, raw in terms
                if t in found
                for start, end in scan.spans(fi, t)
            ]
            part.sort()  # distinct already: one entry per (term, occurrence)
            out.extend(part)
        return tuple(out)

    def match(self, title: str, content: str) -> list[Hit]:
        """The rules that match this item, in build order, with highlights in original offsets."""
        return self._match_scan(self._scan(title, content))

    def match_many(self, items: list[tuple[str, str]]) -> list[list[Hit]]:
        """:meth:`match` of each (title, content), the texts folded in one pass (see ``fold_many``)."""
        folded = fold_many([text for pair in items for text in pair])
        scan = self._scan_folded
        return [self._match_scan(scan((folded[i], folded[i + 1]))) for i in range(0, len(folded), 2)]

    def _match_scan(self, scan: Scan) -> list[Hit]:
        found = scan.found_any
        candidates: set[int] = set().union(*map(self.triggers_of.__getitem__, found.intersection(self._trigger_terms)))
        unfalsified: frozenset[int] = frozenset()
        if self._always:
            suspects = set().union(*map(self._falsifiers.__getitem__, found.intersection(self._falsifier_terms)))
            unfalsified = self._always - suspects  # nothing that could make them false is present
            candidates |= suspects
        rules = self._rules
        matched = set(unfalsified)
        for i in candidates:
            rule = rules[i]
            scan.learn(rule.lazy)
            if rule.evaluate(scan):
                matched.add(i)
        # Highlights wait for the first access (an alert's snippets): evaluation never needs positions
        # beyond a NEAR's, and the scan they are found on stays with the hit.
        highlights = self._highlights
        hits = []
        for i in sorted(matched):
            r = rules[i].rule
            hits.append(Hit(r.id, r.department, r.severity, partial(highlights, scan, rules[i])))
        return hits

    def explain(
        self, rule_id: str, title: str, content: str, budget: Budget | None = None
    ) -> tuple[bool, tuple[Highlight, ...]]:
        """Whether one rule matches, and where its terms occur even when it does not (for rule tests).

        With a ``budget`` TooCostly is raised when the caps are exceeded.
        """
        rule = self._rules[self._index[rule_id]]
        # Every term of the rule in the automaton: the budget caps all their occurrences.
        terms = self._terms
        scan = self._scan(title, content, budget, _automaton({terms[t]: t for t in rule.terms}))
        matched = rule.evaluate(scan)
        if budget is not None:
            budget.check()
        highlights = self._highlights(scan, rule)
        if budget is not None:
            budget.check()
        return matched, highlights


def _automaton(words: dict[str, int]) -> Any:
    """An Aho-Corasick automaton finding ``words``, each reporting its term id."""
    automaton = ahocorasick.Automaton()
    for text, t in words.items():
        automaton.add_word(text, t)
    if words:
        automaton.make_automaton()
    return automaton


def fold_many(texts: list[str]) -> list[Folded]:
    """:func:`fold` of each text, in one pass of the fast path over all of them (a page of items).

    The fast path folds character by character, so the folded texts joined are the joined texts folded:
    one table look-up for the whole page instead of a few NumPy calls per text. A page holding a character
    outside the fast path (beyond the BMP, or left to the reference) is folded text by text. Here, beside
    its one user, with the fast path's internals: service/folding.py is at the module size limit.
    """
    if len(texts) < 2:
        return [fold(text) for text in texts]
    units = np.frombuffer("\n".join(texts).encode("utf-16-le", "surrogatepass"), _U16)
    folded: str = codecs.utf_16_le_decode(_fast().narrow.take(units).tobytes())[0]
    if _WIDE in folded or _UNSAFE in folded:
        return [fold(text) for text in texts]
    out: list[Folded] = []
    start = 0
    for text in texts:
        end = start + len(text)
        part = folded[start:end]
        out.append(_expanded(text, part) if _EXPANDS in part else Folded(text, part))
        start = end + 1  # the newline between texts
    return out


class MatcherHolder:
    """The current matcher, replaced whole: an item in flight keeps the matcher it started with."""

    def __init__(self, matcher: Matcher | None = None) -> None:
        self._matcher = matcher if matcher is not None else Matcher.build([])
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def matcher(self) -> Matcher:
        """The matcher to use for one item (take it once per item, not per field)."""
        return self._matcher

    @property
    def generation(self) -> int:
        """How many times the matcher was replaced; lets callers tell rule sets apart."""
        return self._generation

    def replace(self, matcher: Matcher) -> None:
        """Swap in an already built matcher (one reference assignment)."""
        with self._lock:
            self._matcher = matcher
            self._generation += 1

    def rebuild(self, rules: Iterable[CompiledRule]) -> Matcher:
        """Build a matcher from ``rules`` and swap it in; on error the old one stays."""
        matcher = Matcher.build(rules)
        self.replace(matcher)
        return matcher

    def match(self, title: str, content: str) -> list[Hit]:
        """Match one item against the current matcher."""
        return self._matcher.match(title, content)


# Caps of POST /api/v1/rules/test: the answer stays small and quick whatever is pasted.
TEST_MAX_TEXT_CHARS = 50_000
TEST_MAX_TITLE_CHARS = 2000
TEST_MAX_HIGHLIGHTS = 1000
TEST_MAX_OCCURRENCES = 200_000
TEST_MAX_SECONDS = 5.0


def evaluate_expression(expr: str, text: str, title: str | None = None) -> dict[str, Any]:
    """``POST /api/v1/rules/test``: match one expression on a text; RuleSyntaxError when it does not parse.

    ``highlights`` lists the occurrences of the expression's (non-negated) terms even when it does not
    match, which is what an officer needs to see why; offsets are into ``text`` (field ``content``) or
    into ``title`` (field ``title``). At most ``TEST_MAX_HIGHLIGHTS`` are listed (``truncated`` says
    when there were more); TooCostly when the terms occur more than ``TEST_MAX_OCCURRENCES`` times or
    the test takes longer than ``TEST_MAX_SECONDS``.
    """
    budget = Budget(TEST_MAX_OCCURRENCES, time.monotonic() + TEST_MAX_SECONDS)
    rule = CompiledRule("test", "", "normal", parse(expr))
    matched, highlights = Matcher.build([rule]).explain("test", title or "", text, budget)
    return {
        "matched": matched,
        "highlights": [
            {"field": h.field, "start": h.start, "end": h.end, "term": h.term} for h in highlights[:TEST_MAX_HIGHLIGHTS]
        ],
        "truncated": len(highlights) > TEST_MAX_HIGHLIGHTS,
    }
