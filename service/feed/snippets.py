"""Alert snippets: short excerpts around the matched terms, with highlight offsets into the excerpt.

Offsets rather than markup: the console builds highlighted text from them with text nodes, so crawled
text is never parsed as HTML.

Mask first, then cut: an excerpt is cut from the masked title or content, never masked after the cut.
A number cut in two no longer looks like a number (``本人电话1390000``) and would pass a masker whole,
while another view of the same item shows the rest (``139****1111``). Snippets therefore hold no personal
data for anyone, admins included (they read the original on the item and the ticket), and a highlight that
falls on masked characters is dropped: a rule term written as digits would otherwise confirm them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.masking import mask_text
from service.rules.hits import Highlight, by_field, snippet_windows


def snippets(
    title: str, content: str, highlights: Sequence[Highlight], width: int = 80, limit: int = 3
) -> list[dict[str, Any]]:
    """Up to ``limit`` excerpts of about ``width`` characters; the whole title when the title is hit."""
    raw = {"title": title, "content": content}
    masked = {"title": mask_text(title), "content": mask_text(content)}  # same lengths: offsets carry over
    out: list[dict[str, Any]] = []
    for field, items in by_field(highlights).items():
        text, original = masked[field], raw[field]
        windows = [(0, len(text))] if field == "title" else snippet_windows(len(text), items, width)
        for lo, hi in windows:
            inside = [
                h for h in items if lo <= h.start and h.end <= hi and text[h.start : h.end] == original[h.start : h.end]
            ]
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
