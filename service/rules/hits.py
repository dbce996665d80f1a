"""What matching produces: hits with highlights, and the snippets alerts show around them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from service.masking import mask_text
from service.rules.language import Field
from service.vocabulary import Severity


class Highlight(NamedTuple):
    """A term found at ``[start, end)`` of a field, in the original text's character offsets."""

    field: Field
    start: int
    end: int
    term: str  # the term as written in the rule


@dataclass(frozen=True)
class Hit:
    """One rule matched one item; ``highlights`` are worked out on first access.

    Most hits of a rule set are decided from which terms occur; where they occur is needed only for
    what an alert shows (its snippets), so finding every occurrence waits until someone asks.
    """

    rule_id: str
    department: str
    severity: Severity
    find_highlights: Callable[[], tuple[Highlight, ...]] = field(repr=False, compare=False)

    @cached_property
    def highlights(self) -> tuple[Highlight, ...]:
        """Every occurrence of the rule's (non-negated) terms, title first, in original offsets."""
        return self.find_highlights()


def sort_highlights(highlights: Sequence[Highlight]) -> tuple[Highlight, ...]:
    """Title first, then by position; duplicates dropped."""
    return tuple(sorted(set(highlights), key=lambda h: (h.field != "title", h.start, h.end, h.term)))


def make_snippets(
    title: str,
    content: str,
    highlights: Sequence[Highlight],
    width: int = 60,
    limit: int = 3,
    mark: tuple[str, str] = ("【", "】"),
) -> list[str]:
    """Up to ``limit`` excerpts of about ``width`` characters around the highlights, terms marked.

    Cut from the masked text (a number cut in two would no longer look like one to the masker).
    """
    texts = {"title": mask_text(title), "content": mask_text(content)}
    snippets: list[str] = []
    for field_name, items in by_field(highlights).items():
        text = texts[field_name]
        for lo, hi in snippet_windows(len(text), items, width):
            snippets.append(_render(text, lo, hi, items, mark))
            if len(snippets) >= limit:
                return snippets
    return snippets


def by_field(highlights: Sequence[Highlight]) -> dict[str, list[Highlight]]:
    """Sorted highlights grouped by field, title first."""
    grouped: dict[str, list[Highlight]] = {}
    for h in sort_highlights(highlights):
        grouped.setdefault(h.field, []).append(h)
    return grouped


def snippet_windows(length: int, items: Sequence[Highlight], width: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` excerpts of about ``width`` characters around ``items`` (one field), overlaps merged."""
    windows: list[list[int]] = []
    for h in items:
        pad = max(0, (width - (h.end - h.start)) // 2)
        lo, hi = max(0, h.start - pad), min(length, h.end + pad)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    return [(lo, hi) for lo, hi in windows]


def _render(text: str, lo: int, hi: int, items: list[Highlight], mark: tuple[str, str]) -> str:
    # Overlapping highlights (化工 inside 化工厂) are merged so marks never nest.
    spans: list[list[int]] = []
    for h in items:
        start, end = max(h.start, lo), min(h.end, hi)
        if start >= end:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    out = ["…" if lo > 0 else ""]
    pos = lo
    for start, end in spans:
        out += [text[pos:start], mark[0], text[start:end], mark[1]]
        pos = end
    out += [text[pos:hi], "…" if hi < len(text) else ""]
    return "".join(out).replace("\n", " ")
