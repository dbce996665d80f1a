"""One item's scan and the compiled rule logic evaluated on it (the matcher's inner loop).

Rules become nested closures over a :class:`Scan`; which terms may change a rule's value on an empty
text (its triggers) decides whether it is a candidate at all.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable

from service.folding import Folded
from service.rules.language import FIELDS, And, Near, Node, Not, Or, Term

Spans = list[tuple[int, int]]


class Scan:
    """One item's folded fields and the terms found in each; positions are worked out only when asked for.

    The automaton holds only the key terms, those that select candidate rules, and its scan keeps which
    of them occur (a set per field). A candidate's other terms are looked up with ``in`` on the folded
    text when it is evaluated (:meth:`learn`): the automaton's cost follows the occurrences it reports,
    and the common words (事件词, 主体词) occur dozens of times in every item but decide nothing alone.
    The few positions a matched rule's highlights or a NEAR need are found again with ``str.find``, which
    yields every occurrence, overlapping ones included, as the automaton would.
    """

    __slots__ = ("checked", "folded", "found_any", "sets", "spans_cache", "terms")

    def __init__(
        self, folded: tuple[Folded, Folded], found: tuple[set[int], set[int]], terms: list[str], complete: bool
    ):
        self.folded = folded
        self.found_any = found[0] | found[1]
        self.sets = (found[0], found[1], self.found_any)  # by scope: title, content, either
        self.terms = terms
        # Terms outside the automaton already looked up; None when the scan found every term (rule tests).
        self.checked: set[int] | None = None if complete else set()
        self.spans_cache: dict[tuple[int, int], Spans] | None = None  # made on first use: most items need none

    def learn(self, lazy: tuple[int, ...]) -> None:
        """Add which of the terms ``lazy`` (not in the automaton) occur in each field; each looked up once."""
        checked = self.checked
        if checked is None or not lazy:
            return
        title, content = self.folded[0].text, self.folded[1].text
        in_title, in_content, in_either = self.sets
        terms = self.terms
        for t in lazy:
            if t in checked:
                continue
            checked.add(t)
            term = terms[t]
            if term in title:
                in_title.add(t)
                in_either.add(t)
            if term in content:
                in_content.add(t)
                in_either.add(t)

    def spans(self, field: int, tid: int) -> Spans:
        """Original spans of term ``tid`` in field 0 (title) or 1 (content), sorted by start."""
        cache = self.spans_cache
        if cache is None:
            cache = self.spans_cache = {}
        out = cache.get((field, tid))
        if out is None:
            out = cache[field, tid] = self.folded[field].occurrences(self.terms[tid])
        return out


Evaluator = Callable[[Scan], bool]
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}


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


def _scope(term: Term) -> int:
    """Index into :attr:`Scan.sets`: 0 title, 1 content, 2 either."""
    return 2 if len(term.fields) == len(FIELDS) else FIELD_INDEX[term.fields[0]]


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


def compile_node(node: Node, tid: dict[str, int]) -> Evaluator:
    """Turn a syntax tree into nested closures over a scan (no code generation, no eval).

    The plain terms among an AND's or OR's children are tested together, one set operation per scope.
    """
    if isinstance(node, Term):
        return _term_group(frozenset((tid[node.text],)), _scope(node), True)
    if isinstance(node, Near):
        a, b, n = tid[node.left.text], tid[node.right.text], node.distance
        fields = [FIELD_INDEX[f] for f in FIELDS if f in node.left.fields and f in node.right.fields]

        def near(s: Scan) -> bool:
            for fi in fields:
                found = s.sets[fi]
                if a in found and b in found and _near(s.spans(fi, a), s.spans(fi, b), n):
                    return True
            return False

        return near
    if isinstance(node, Not):
        inner = compile_node(node.child, tid)
        return lambda s: not inner(s)
    assert isinstance(node, (And, Or))
    both = isinstance(node, And)
    groups: dict[int, set[int]] = {}
    parts: list[Evaluator] = []
    for child in node.children:
        if isinstance(child, Term):
            groups.setdefault(_scope(child), set()).add(tid[child.text])
        else:
            parts.append(compile_node(child, tid))
    groups_first = [_term_group(frozenset(terms), scope, both) for scope, terms in groups.items()]
    return _chain(groups_first + parts, both)


def triggers_of(node: Node, tid: dict[str, int], cost: Callable[[frozenset[int]], int]) -> tuple[bool, frozenset[int]]:
    """(value on an empty text, terms one of which must be present to change that value)."""
    if isinstance(node, Term):
        return False, frozenset((tid[node.text],))
    if isinstance(node, Near):
        sides = (frozenset((tid[node.left.text],)), frozenset((tid[node.right.text],)))
        return False, min(sides, key=cost)
    if isinstance(node, Not):
        value, terms = triggers_of(node.child, tid, cost)
        return not value, terms
    results = [triggers_of(child, tid, cost) for child in node.children]
    # AND is false on empty if one child is; any such child's triggers suffice, so take the cheapest.
    # OR is true on empty if one child is; falsifying it needs that child falsified, so the same.
    decisive = not isinstance(node, And)
    choices = [terms for value, terms in results if value is decisive]
    if choices:
        return decisive, min(choices, key=cost)
    return not decisive, frozenset().union(*(terms for _, terms in results))
