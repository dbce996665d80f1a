"""The structured rule form (地域词 + 主体词 + 事件词 − 排除词) compiled to the same syntax tree.

Each list is OR-ed inside, the non-empty lists are AND-ed, and ``exclude`` is NOT-ed. Entries are literal
text (spaces and operator characters are just characters), each looking at the title and the content.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.rules.language import And, Node, Not, Or, Term
from service.rules.normalize import fold_term

STRUCTURED_KEYS = ("regions", "subjects", "events", "exclude")


def _any_of(key: str, entries: Sequence[str]) -> Node:
    terms: list[Node] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"{key}[{index}]: an entry must be non-empty text")
        terms.append(Term(fold_term(entry), entry))
    return terms[0] if len(terms) == 1 else Or(tuple(terms))


def structured_node(
    regions: Sequence[str] = (),
    subjects: Sequence[str] = (),
    events: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Node:
    """Build the tree for a structured rule; ValueError names the list and entry that is wrong."""
    parts: list[Node] = [
        _any_of(key, entries)
        for key, entries in (("regions", regions), ("subjects", subjects), ("events", events))
        if entries
    ]
    if not parts:
        raise ValueError("a structured rule needs at least one of regions, subjects, events")
    if exclude:
        parts.append(Not(_any_of("exclude", exclude)))
    return parts[0] if len(parts) == 1 else And(tuple(parts))
