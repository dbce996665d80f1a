"""Alert snippets: short excerpts around the matched terms, with highlight offsets into the excerpt.

Offsets rather than markup: the console builds highlighted text from them with text nodes, so crawled
text is never parsed as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.rules.hits import Highlight, by_field, snippet_windows


def snippets(
    title: str, content: str, highlights: Sequence[Highlight], width: int = 80, limit: int = 3
) -> list[dict[str, Any]]:
    """Up to ``limit`` excerpts of about ``width`` characters; the whole title when the title is hit."""
    texts = {"title": title, "content": content}
    out: list[dict[str, Any]] = []
    for field, items in by_field(highlights).items():
        text = texts[field]
        windows = [(0, len(text))] if field == "title" else snippet_windows(len(text), items, width)
        for lo, hi in windows:
            inside = [h for h in items if lo <= h.start and h.end <= hi]
            out.append(
                {
                    "field": field,
                    "text": text[lo:hi],
                    "prefix": lo > 0,
                    "suffix": hi < len(text),
                    "highlights": [{"start": h.start - lo, "end": h.end - lo, "term": h.term} for h in inside],
                }
            )
            if len(out) >= limit:
                return out
    return out
