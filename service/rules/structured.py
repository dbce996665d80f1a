"""The structured rule form (地域词 + 主体词 + 事件词 − 排除词) compiled to the same syntax tree.

Each list is OR-ed inside, the non-empty lists are AND-ed, and ``exclude`` is NOT-ed. Entries are literal
text (spaces and operator characters are just characters), each looking at the title and the content.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.folding import fold_term
from service.rules.language import MAX_TERMS, And, Node, Not, Or, Term

STRUCTURED_KEYS = ("regions", "subjects", "events", "exclude")
KEY_LABELS = {"regions": "地域词", "subjects": "主体词", "events": "事件词", "exclude": "排除词"}
# One entry is one phrase; a long paragraph pasted into a list is a mistake, not a keyword.
MAX_ENTRY_CHARS = 200
BOTH_FORMS = "expr 与 regions/subjects/events/exclude 只能二选一"
NO_FORM = "需要 expr，或地域词、主体词、事件词中的至少一类（regions/subjects/events）"


def _any_of(key: str, entries: Sequence[str]) -> Node:
    terms: list[Node] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"{key}[{index}]：{KEY_LABELS[key]}第 {index + 1} 项为空")
        if len(entry) > MAX_ENTRY_CHARS:
            raise ValueError(
                f"{key}[{index}]：{KEY_LABELS[key]}第 {index + 1} 项过长"
                f"（{len(entry)} 个字符，最多 {MAX_ENTRY_CHARS} 个）"
            )
        terms.append(Term(fold_term(entry), entry))
    return terms[0] if len(terms) == 1 else Or(tuple(terms))


def structured_node(
    regions: Sequence[str] = (),
    subjects: Sequence[str] = (),
    events: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Node:
    """Build the tree for a structured rule; ValueError names the list and entry that is wrong."""
    total = sum(len(entries) for entries in (regions, subjects, events, exclude))
    if total > MAX_TERMS:
        raise ValueError(f"词过多：结构化规则共 {total} 个词，最多 {MAX_TERMS} 个")
    parts: list[Node] = [
        _any_of(key, entries)
        for key, entries in (("regions", regions), ("subjects", subjects), ("events", events))
        if entries
    ]
    if not parts:
        raise ValueError("结构化规则至少需要地域词、主体词、事件词中的一类（regions/subjects/events）")
    if exclude:
        parts.append(Not(_any_of("exclude", exclude)))
    return parts[0] if len(parts) == 1 else And(tuple(parts))
