"""A slow, obviously correct evaluator of the rule language; tests hold the automaton matcher to it."""

from __future__ import annotations

from service.folding import Folded, fold
from service.rules.hits import Highlight, sort_highlights
from service.rules.language import FIELDS, And, Near, Node, Not, Or, Term, iter_terms

Spans = list[tuple[int, int]]


def occurrences(folded: Folded, term: str) -> Spans:
    """All occurrences of the folded ``term``, overlapping ones included, as original spans."""
    out: Spans = []
    start = folded.text.find(term)
    while start >= 0:
        out.append(folded.span(start, start + len(term)))
        start = folded.text.find(term, start + 1)
    return out


def near(left: Spans, right: Spans, distance: int) -> bool:
    """Some pair of different occurrences has at most ``distance`` characters strictly between."""
    for a in left:
        for b in right:
            if a != b and max(b[0] - a[1], a[0] - b[1]) <= distance:
                return True
    return False


class _Texts:
    def __init__(self, title: str, content: str) -> None:
        self.folded = {"title": fold(title), "content": fold(content)}

    def find(self, term: Term, field: str) -> Spans:
        return occurrences(self.folded[field], term.text) if field in term.fields else []


def _eval(node: Node, texts: _Texts) -> bool:
    if isinstance(node, Term):
        return any(texts.find(node, f) for f in FIELDS)
    if isinstance(node, Near):
        return any(
            near(texts.find(node.left, f), texts.find(node.right, f), node.distance)
            for f in FIELDS
            if f in node.left.fields and f in node.right.fields
        )
    if isinstance(node, Not):
        return not _eval(node.child, texts)
    if isinstance(node, And):
        return all(_eval(child, texts) for child in node.children)
    assert isinstance(node, Or)
    return any(_eval(child, texts) for child in node.children)


def evaluate(node: Node, title: str, content: str) -> tuple[bool, tuple[Highlight, ...]]:
    """Whether ``node`` matches, and every occurrence of its non-negated terms in their fields."""
    texts = _Texts(title, content)
    highlights = [
        Highlight(f, start, end, term.raw)
        for term, negated in iter_terms(node)
        if not negated
        for f in term.fields
        for start, end in texts.find(term, f)
    ]
    return _eval(node, texts), sort_highlights(highlights)
