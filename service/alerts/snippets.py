"""Alert snippets: short excerpts around the matched terms, with highlight offsets into the excerpt.

Offsets rather than markup: the console builds highlighted text from them with text nodes, so crawled
text is never parsed as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.rules.hits import Highlight, sort_highlights


def snippets(
    title: str, content: str, highlights: Sequence[Highlight], width: int = 80, limit: int = 3
) -> list[dict[str, Any]]:
    """Up to ``limit`` excerpts of about ``width`` characters; the title is one whole excerpt when hit."""
    texts = {"title": title, "content": content}
    out: list[dict[str, Any]] = []
    by_field: dict[str, list[Highlight]] = {}
    for h in sort_highlights(highlights):
        by_field.setdefault(h.field, []).append(h)
    for field, items in by_field.items():
        text = texts[field]
        windows: list[list[int]] = []
        for h in items:
            if field == "title":
                lo, hi = 0, len(text)
            else:
                pad = max(0, (width - (h.end - h.start)) // 2)
                lo, hi = max(0, h.start - pad), min(len(text), h.end + pad)
            if windows and lo <= windows[-1][1]:
                windows[-1][1] = max(windows[-1][1], hi)
            else:
                windows.append([lo, hi])
        for lo, hi in windows:
            marks = [
                {"start": h.start - lo, "end": h.end - lo, "term": h.term} for h in items if lo <= h.start and h.end <= hi
            ]
            out.append(
                {
                    "field": field,
                    "text": text[lo:hi],
                    "prefix": lo > 0,
                    "suffix": hi < len(text),
                    "highlights": marks,
                }
            )
            if len(out) >= limit:
                return out
    return out
