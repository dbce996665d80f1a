"""The multi-pattern matcher: every term of every rule in one Aho-Corasick automaton.

An item's title and content are folded and scanned once each; the found terms pick the candidate rules
(for each rule a small set of its terms, at least one of which must be present for it to match, chosen
to be the rarest among the rules), and only those are evaluated. Rules that hold on an empty text (``NOT
招聘``) are tracked the other way round: they hit unless a term that could falsify them is present.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import ahocorasick

from service.folding import Folded, fold
from service.rules.hits import Highlight, Hit
from service.rules.language import FIELDS, And, Near, Node, Not, Or, Term, iter_terms, parse
from service.rules.structured import BOTH_FORMS, structured_node
from service.vocabulary import SEVERITIES, Severity, is_severity

Spans = list[tuple[int, int]]
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


class _Scan:
    """One item's folded fields and the terms found in each; positions are worked out only when asked for.

    The automaton's scan keeps only which terms occur (a set per field): most items match no rule, and
    the few positions a matched rule's highlights or a NEAR need are found again with ``str.find`` on the
    folded text, which yields every occurrence, overlapping ones included, as the automaton would.
    """

    __slots__ = ("folded", "found_any", "sets", "spans_cache", "terms")

    def __init__(self, folded: tuple[Folded, Folded], found: tuple[set[int], set[int]], terms: list[str]):
        self.folded = folded
        self.found_any = found[0] | found[1]
        self.sets = (found[0], found[1], self.found_any)  # by scope: title, content, either
        self.terms = terms
        self.spans_cache: tuple[dict[int, Spans], dict[int, Spans]] = ({}, {})

    def spans(self, field: int, tid: int) -> Spans:
        """Original spans of term ``tid`` in field 0 (title) or 1 (content), sorted by start."""
        cache = self.spans_cache[field]
        out = cache.get(tid)
        if out is None:
            out = cache[tid] = self.folded[field].occurrences(self.terms[tid])
        return out


Evaluator = Callable[[_Scan], bool]
_FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}


def _near(left: Spans, right: Spans, distance: int) -> bool:
    # ``right`` is sorted by start. For each a only the b starting in [a.start - distance - longest,
    # a.end + distance] can be close enough, found by bisection: the pairwise loop was quadratic when
    # every b lay far before every a (a rule test on a long text ran for minutes).
    if not left or not right:
        return False
    starts = [b[0] for b in right]
    longest = max(b[1] - b[0] for b in right)
    for a in left:
        lo = bisect_left(starts, a[0] - distance - longest)
        hi = bisect_right(starts, a[1] + distance, lo)
        for k in range(lo, hi):
            b = right[k]
            if b != a and a[0] - b[1] <= distance:
                return True
    return False


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


def _scope(term: Term) -> int:
    """Index into :attr:`_Scan.sets`: 0 title, 1 content, 2 either."""
    return 2 if len(term.fields) == len(FIELDS) else _FIELD_INDEX[term.fields[0]]


def _chain(parts: list[Evaluator], both: bool) -> Evaluator:
    # Nested two-way closures rather than all()/any() over a generator: no generator per evaluation.
    combined = parts[0]
    for part in parts[1:]:
        combined = _both(combined, part) if both else _either(combined, part)
    return combined


def _both(p: Evaluator, q: Evaluator) -> Evaluator:
    return lambda s: p(s) and q(s)


def _either(p: Evaluator, q: Evaluator) -> Evaluator:
    return lambda s: p(s) or q(s)


def _term_group(terms: frozenset[int], scope: int, both: bool) -> Evaluator:
    if len(terms) == 1:
        (t,) = terms
        return lambda s: t in s.sets[scope]
    if both:
        return lambda s: terms <= s.sets[scope]
    return lambda s: not terms.isdisjoint(s.sets[scope])


def _compile(node: Node, tid: dict[str, int]) -> Evaluator:
    """Turn a syntax tree into nested closures over a scan (no code generation, no eval).

    The plain terms among an AND's or OR's children are tested together, one set operation per scope.
    """
    if isinstance(node, Term):
        return _term_group(frozenset((tid[node.text],)), _scope(node), True)
    if isinstance(node, Near):
        a, b, n = tid[node.left.text], tid[node.right.text], node.distance
        fields = [_FIELD_INDEX[f] for f in FIELDS if f in node.left.fields and f in node.right.fields]

        def near(s: _Scan) -> bool:
            for fi in fields:
                found = s.sets[fi]
                if a in found and b in found and _near(s.spans(fi, a), s.spans(fi, b), n):
                    return True
            return False

        return near
    if isinstance(node, Not):
        inner = _compile(node.child, tid)
        return lambda s: not inner(s)
    assert isinstance(node, (And, Or))
    both = isinstance(node, And)
    groups: dict[int, set[int]] = {}
    parts: list[Evaluator] = []
    for child in node.children:
        if isinstance(child, Term):
            groups.setdefault(_scope(child), set()).add(tid[child.text])
        else:
            parts.append(_compile(child, tid))
    groups_first = [_term_group(frozenset(terms), scope, both) for scope, terms in groups.items()]
    return _chain(groups_first + parts, both)


def _triggers(node: Node, tid: dict[str, int], cost: Callable[[frozenset[int]], int]) -> tuple[bool, frozenset[int]]:
    """(value on an empty text, terms one of which must be present to change that value)."""
    if isinstance(node, Term):
        return False, frozenset((tid[node.text],))
    if isinstance(node, Near):
        sides = (frozenset((tid[node.left.text],)), frozenset((tid[node.right.text],)))
        return False, min(sides, key=cost)
    if isinstance(node, Not):
        value, terms = _triggers(node.child, tid, cost)
        return not value, terms
    results = [_triggers(child, tid, cost) for child in node.children]
    # AND is false on empty if one child is; any such child's triggers suffice, so take the cheapest.
    # OR is true on empty if one child is; falsifying it needs that child falsified, so the same.
    decisive = not isinstance(node, And)
    choices = [terms for value, terms in results if value is decisive]
    if choices:
        return decisive, min(choices, key=cost)
    return not decisive, frozenset().union(*(terms for _, terms in results))


@dataclass(frozen=True)
class _Rule:
    rule: CompiledRule
    evaluate: Evaluator
    highlight_terms: tuple[tuple[tuple[int, str], ...], ...]  # per field: (tid, term as written)


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
        self._triggers = triggers
        self._trigger_terms = frozenset(triggers)
        self._always = always
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

        compiled: list[_Rule] = []
        triggers: dict[int, list[int]] = {}
        always: list[tuple[int, frozenset[int]]] = []
        for index, (rule, terms) in enumerate(zip(rules, rule_terms, strict=True)):
            highlight_terms = tuple(
                tuple(
                    sorted({(tid[term.text], term.raw) for term, negated in terms if not negated and f in term.fields})
                )
                for f in FIELDS
            )
            compiled.append(_Rule(rule, _compile(rule.node, tid), highlight_terms))
            empty_value, trigger_terms = _triggers(rule.node, tid, cost)
            if empty_value:
                always.append((index, trigger_terms))
            else:
                for t in trigger_terms:
                    triggers.setdefault(t, []).append(index)

        automaton = ahocorasick.Automaton()
        for text, t in tid.items():
            automaton.add_word(text, t)
        if tid:
            automaton.make_automaton()
        return cls(compiled, automaton, list(tid), {t: tuple(v) for t, v in triggers.items()}, always)

    @property
    def rule_ids(self) -> list[str]:
        """Ids of the compiled rules, in build order."""
        return list(self._index)

    @property
    def term_count(self) -> int:
        """Distinct folded terms in the automaton."""
        return len(self._terms)

    def _scan(self, title: str, content: str, budget: Budget | None = None) -> _Scan:
        folded = (fold(title), fold(content))
        automaton = self._automaton
        if not self._terms:
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
        return _Scan(folded, found, self._terms)

    def _highlights(self, scan: _Scan, rule: _Rule) -> tuple[Highlight, ...]:
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
        scan = self._scan(title, content)
        found = scan.found_any
        candidates: set[int] = set().union(*map(self._triggers.__getitem__, found.intersection(self._trigger_terms)))
        matched: list[int] = []
        for index, falsifiers in self._always:
            if found.isdisjoint(falsifiers):
                matched.append(index)  # nothing that could make it false is present
            else:
                candidates.add(index)
        rules = self._rules
        matched.extend(i for i in candidates if rules[i].evaluate(scan))
        hits = []
        for i in sorted(set(matched)):
            r = rules[i].rule
            hits.append(Hit(r.id, r.department, r.severity, self._highlights(scan, rules[i])))
        return hits

    def explain(
        self, rule_id: str, title: str, content: str, budget: Budget | None = None
    ) -> tuple[bool, tuple[Highlight, ...]]:
        """Whether one rule matches, and where its terms occur even when it does not (for rule tests).

        With a ``budget`` TooCostly is raised when the caps are exceeded.
        """
        rule = self._rules[self._index[rule_id]]
        scan = self._scan(title, content, budget)
        matched = rule.evaluate(scan)
        if budget is not None:
            budget.check()
        highlights = self._highlights(scan, rule)
        if budget is not None:
            budget.check()
        return matched, highlights


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
