"""Reading a fetched page the way its source says, and one field's value out of it, cleaned up.

A page is a Document: an HTML selector (html, xml, cdata) or parsed data (json, js). A field's rule
(page_specs.FieldRule) says where its value is (a selector or path, or a template over the list entry's
values), then how to clean it: a regex capture, a value map, explicit date patterns. Text fields stay
HTML fragments (plain text escaped) until the pipeline turns them into text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parsel import Selector

from crawlers import templates
from crawlers.extract import (
    ExtractionError,
    extract_fragment,
    extract_text_value,
    html_selector,
    json_fragment,
    json_path,
    load_js,
    load_json,
    select,
    unwrap_cdata,
)
from crawlers.page_specs import FieldRule
from crawlers.text import html_to_text

DATE_FIELDS = ("published_at", "replied_at")
# Fields that carry markup in the APIs we know (letters and replies are often stored as HTML).
MARKUP_FIELDS = ("content", "reply")


@dataclass
class Document:
    """One fetched page, read as HTML/XML (``selector``) or as data (``data``)."""

    text: str
    selector: Selector | None = None
    data: Any = None

    @property
    def is_data(self) -> bool:
        return self.selector is None


def read_document(text: str, content_type: str, response_type: str, default: str) -> Document:
    """The page read as ``response_type`` (auto: by Content-Type and body, else ``default``).

    ExtractionError when a body that should be JSON or a JS literal is not.
    """
    kind = response_type
    if kind == "auto":
        ctype = content_type.lower()
        head = text.lstrip()[:1]
        if "json" in ctype or "javascript" in ctype or (default == "json" and head in ("{", "[", "")):
            kind = "json"
        elif default == "json" and head != "<":
            kind = "json"  # JSONP or a JS literal served as text/html
        elif "xml" in ctype or text.lstrip().startswith("<?xml"):
            kind = "cdata" if "<![CDATA[" in text else "xml"
        else:
            kind = "html"
    if kind == "json":
        return Document(text, data=load_json(text))
    if kind == "js":
        return Document(text, data=load_js(text))
    if kind == "cdata":
        return Document(text, selector=html_selector(unwrap_cdata(text)))
    if kind == "xml":
        return Document(text, selector=Selector(text=text, type="xml"))
    return Document(text, selector=html_selector(text))


@dataclass
class Context:
    """The values templates may name: captures, vars and fields of a list entry, then paths in records."""

    values: dict[str, Any] = field(default_factory=dict)
    records: tuple[Any, ...] = ()

    def __call__(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        for record in self.records:
            value = json_path(record, name)
            if value is not None:
                return value
        return None

    def child(self, data: Any) -> Context:
        """This context with ``data`` (a detail record) looked into after the entry's own values."""
        return self if data is None else Context(self.values, (*self.records, data))


def raw_value(doc: Document | Selector | Any, rule: FieldRule, name: str, context: Context | None = None) -> Any:
    """What a rule finds before cleaning: an HTML fragment, or a JSON value (dates: text or number).

    ``doc`` is a Document, an entry's Selector, or a JSON record.
    """
    if rule.template is not None:
        try:
            text = templates.render(rule.template, context or Context())
        except templates.TemplateError:
            return ""
        return text if name in DATE_FIELDS else html.escape(text)
    assert rule.select is not None
    selector = doc.selector if isinstance(doc, Document) else doc if isinstance(doc, Selector) else None
    if selector is not None:
        return extract_fragment(selector, rule.select)
    data = doc.data if isinstance(doc, Document) else doc
    value = json_path(data, rule.select)
    if name in DATE_FIELDS:
        return value if isinstance(value, int | float | str) else None
    return json_fragment(value, markup=name in MARKUP_FIELDS)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return html_to_text(value)
    return str(value)


def finish(name: str, raw: Any, rule: FieldRule) -> Any:
    """The raw value with the rule's regex, map and date patterns applied (unchanged when it has none)."""
    if not (rule.regex or rule.map or rule.date_format):
        return raw
    is_date = name in DATE_FIELDS
    if isinstance(raw, int | float) and not isinstance(raw, bool) and not (rule.regex or rule.map):
        return raw  # an epoch number needs no pattern
    text = _as_text(raw)
    if rule.regex:
        text = capture(rule.regex, text)
    if rule.map:
        text = rule.map.get(text.strip(), text)
    if is_date:
        for pattern in rule.date_format:
            try:
                return datetime.strptime(text.strip(), pattern)
            except ValueError:
                continue
        return text
    return html.escape(text)


def capture(pattern: str, text: str) -> str:
    """The regex's group ``value``, else its group 1, else the whole match; '' when it does not match."""
    match = re.search(pattern, text, re.S)
    if match is None:
        return ""
    if "value" in match.re.groupindex:
        return match.group("value") or ""
    if match.re.groups:
        return match.group(1) or ""
    return match.group(0)


def extract_fields(
    doc: Document | Selector | Any, rules: dict[str, FieldRule], context: Context | None = None
) -> dict[str, Any]:
    """Every rule's finished value, by field name."""
    return {name: finish(name, raw_value(doc, rule, name, context), rule) for name, rule in rules.items()}


def is_empty(value: Any) -> bool:
    """True when a finished value holds nothing a person would see."""
    if value is None:
        return True
    if isinstance(value, str):
        return not html_to_text(value)
    return False


def entry_values(entry: Selector | Any, rules: dict[str, FieldRule], context: Context) -> dict[str, Any]:
    """Named plain values of a list entry (``list.vars``), for templates."""
    out: dict[str, Any] = {}
    for name, rule in rules.items():
        if rule.template is not None:
            try:
                value: Any = templates.render(rule.template, context)
            except templates.TemplateError:
                value = None
        elif isinstance(entry, Selector):
            assert rule.select is not None
            value = extract_text_value(entry, rule.select)
        else:
            assert rule.select is not None
            value = json_path(entry, rule.select)
        if rule.regex and value is not None:
            value = capture(rule.regex, str(value))
        if rule.map and value is not None:
            value = rule.map.get(str(value).strip(), value)
        out[name] = value
    return out


def link_captures(pattern: str | None, value: str) -> dict[str, str] | None:
    """The groups of ``list.url_pattern`` in a link value, by number and by name; None when it does not match."""
    if pattern is None:
        return {}
    match = re.search(pattern, value, re.S)
    if match is None:
        return None
    out = {str(i): g or "" for i, g in enumerate(match.groups(), start=1)}
    out.update({k: v or "" for k, v in match.groupdict().items()})
    out["0"] = match.group(0)
    return out


def iter_nodes(doc: Document, path: str) -> Iterator[Any]:
    """The list entries of a page: selector nodes (html) or records (data)."""
    if doc.selector is not None:
        yield from select(doc.selector, path)
        return
    records = json_path(doc.data, path)
    if not isinstance(records, list):
        raise ExtractionError(f"list.items 路径 {path!r} 不是列表")
    yield from records


REPORT_VALUE_CHARS = 80


def selector_report(where: str, target: Document | Selector | Any, key: str, rule: FieldRule) -> dict[str, Any]:
    """How many nodes one selector (or path) matched in ``target`` and the first value, for ``sources check``."""
    row: dict[str, Any] = {
        "where": where,
        "key": key,
        "selector": rule.select or rule.template,
        "nodes": 0,
        "first": "",
    }
    if rule.template is not None:
        return row | {"nodes": None}
    assert rule.select is not None
    selector = target.selector if isinstance(target, Document) else target if isinstance(target, Selector) else None
    try:
        if selector is not None:
            if rule.select.startswith("label:"):
                first = extract_text_value(selector, rule.select)
                count = 1 if first else 0
            else:
                count = len(select(selector, rule.select))
                first = extract_text_value(selector, rule.select)
        else:
            data = target.data if isinstance(target, Document) else target
            value = json_path(data, rule.select)
            count = len(value) if isinstance(value, list) else 0 if value is None else 1
            first = _as_text(value[0] if isinstance(value, list) and value else value)
    except ExtractionError as exc:
        return row | {"error": str(exc)}
    first = " ".join(str(first).split())
    if len(first) > REPORT_VALUE_CHARS:
        first = first[:REPORT_VALUE_CHARS] + "…"
    return row | {"nodes": count, "first": first}
