"""HTML fragments to clean text: paragraphs kept, scripts, styles and comments dropped, whitespace tidied.

The characters themselves are kept as published (full-width punctuation stays full-width): case and width
are folded only where text is compared (rule matching, search keys, near-duplicate hashes), never in
what is stored and shown.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata

from lxml import etree
from lxml import html as lxml_html

_DROP = {"script", "style", "noscript", "template", "iframe", "object", "embed", "head", "title", "select"}
_BLOCK = {
    "p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "ul", "ol", "li",
    "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "thead",
    "tbody", "tfoot", "tr", "form", "fieldset", "address", "figure", "figcaption", "hr", "center",
}  # fmt: skip
_CELL = {"td", "th"}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000\u200b\ufeff]+")
_CELL_SEP = "\t"
_MARKUP = re.compile(r"<[a-zA-Z!/?]|&#?[a-zA-Z0-9]+;")
# Control characters break JSON consumers and terminals; tab and newline carry structure.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def normalize_text(value: str | None) -> str:
    """Whitespace collapsed inside lines, blank lines dropped, ends trimmed; characters kept as published."""
    if not value:
        return ""
    lines = []
    # Control characters go in one pass (never a tab or newline); a line without cells is one substitution.
    for line in _CONTROL.sub("", value).split("\n"):
        if _CELL_SEP in line:
            joined = " ".join(c for c in (_SPACES.sub(" ", cell).strip() for cell in line.split(_CELL_SEP)) if c)
        else:
            joined = _SPACES.sub(" ", line).strip()
        if joined:
            lines.append(joined)
    return "\n".join(lines)


# The spider asks whether each field is empty as text, then the clean step converts the same fragments:
# the second conversion of an item's fields is a lookup.
@functools.lru_cache(maxsize=64)
def html_to_text(fragment: str | None, keep_cells: bool = False) -> str:
    """Clean text of an HTML fragment (or of plain text holding entities); one line per block.

    With ``keep_cells`` table cells stay separated by tabs so label lookups can stop at a cell.
    """
    if not fragment:
        return ""
    if not _MARKUP.search(fragment):
        return normalize_text(fragment) if not keep_cells else _normalize_cells(fragment)
    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return normalize_text(html.unescape(re.sub(r"<[^>]*>", " ", fragment)))
    return element_to_text(root, keep_cells=keep_cells)


def element_to_text(element: etree._Element, keep_cells: bool = False) -> str:
    """Clean text of a parsed element (see html_to_text)."""
    parts: list[str] = []
    _walk(element, parts)
    raw = "".join(parts)
    return _normalize_cells(raw) if keep_cells else normalize_text(raw)


def _normalize_cells(raw: str) -> str:
    text = raw
    lines = []
    for line in text.split("\n"):
        cells = [_SPACES.sub(" ", _CONTROL.sub("", c)).strip() for c in line.split(_CELL_SEP)]
        cells = [c for c in cells if c]
        if cells:
            lines.append(_CELL_SEP.join(cells))
    return "\n".join(lines)


def _walk(el: etree._Element, parts: list[str]) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if not tag:  # comments and processing instructions
        if el.tail:
            parts.append(el.tail)
        return
    tag = tag.lower().rsplit("}", 1)[-1]
    if tag in _DROP:
        if el.tail:
            parts.append(el.tail)
        return
    if tag in _BLOCK:
        parts.append("\n")
    elif tag in _CELL:
        parts.append(_CELL_SEP)
    elif tag == "br":
        parts.append("\n")
    elif tag == "img" and el.get("alt"):
        parts.append(el.get("alt", ""))
    if el.text:
        parts.append(el.text)
    for child in el:
        _walk(child, parts)
    if tag in _BLOCK:
        parts.append("\n")
    elif tag in _CELL:
        parts.append(_CELL_SEP)
    if el.tail:
        parts.append(el.tail)


def after_label(text: str, label: str) -> str:
    """The value written after ``label`` (``回复时间：…``) in cell-separated text; '' when absent.

    The value ends at the end of its table cell or line; when the label's cell holds nothing else the
    next cell (or line) is the value, as in ``<td>回复时间</td><td>2023-07-21</td>``.
    """
    found = _find_label(text, label)
    if found is None:
        # The page and the label may differ in width only (回复时间: and 回复时间：).
        found = _find_label(unicodedata.normalize("NFKC", text), unicodedata.normalize("NFKC", label))
    return found or ""


def _find_label(text: str, label: str) -> str | None:
    lines = text.split("\n")
    for li, line in enumerate(lines):
        cells = line.split(_CELL_SEP)
        for ci, cell in enumerate(cells):
            pos = cell.find(label)
            if pos < 0:
                continue
            value = cell[pos + len(label) :].lstrip(" :：]】」)").strip()
            if value:
                return value
            if ci + 1 < len(cells):
                return cells[ci + 1].strip()
            if li + 1 < len(lines):
                return lines[li + 1].split(_CELL_SEP)[0].strip()
            return ""
    return None
