"""Selectors of sources.yaml applied to pages and JSON records (CSS, ``xpath:``, ``label:``, dotted paths)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import chompjs
from parsel import Selector, SelectorList

from crawlers.text import after_label, element_to_text

XPATH_PREFIX = "xpath:"
LABEL_PREFIX = "label:"

# Bodies of WAF / anti-bot interstitials that answer 200 (云锁, 安全狗, 加速乐, 知道创宇, Cloudflare, 验证码).
_CHALLENGE_MARKERS = (
    "验证码",
    "安全验证",
    "访问验证",
    "人机验证",
    "滑动验证",
    "请完成验证",
    "访问过于频繁",
    "访问受限",
    "安全狗",
    "云锁",
    "__jsl_clearance",
    "cdn-cgi/challenge",
    "cf-chl",
    "WAF",
    "请开启JavaScript",
    "请启用JavaScript",
    "enable JavaScript",
)
_CALLBACK_NAME = re.compile(r"[\w$.]{1,128}")


class ExtractionError(ValueError):
    """A page or record could not be read with the source's selectors."""


def select(root: Selector, spec: str) -> SelectorList[Selector]:
    """Nodes matching a CSS selector, or an XPath one written ``xpath:...``."""
    try:
        if spec.startswith(XPATH_PREFIX):
            return root.xpath(spec[len(XPATH_PREFIX) :].strip())
        return root.css(spec)
    except ValueError as exc:  # parsel raises ValueError subclasses for bad selectors
        raise ExtractionError(f"invalid selector {spec!r}: {exc}") from exc


def extract_fragment(root: Selector, spec: str) -> str:
    """What a selector finds, as an HTML fragment: matched elements as markup, matched text escaped."""
    if spec.startswith(LABEL_PREFIX):
        page_text = element_to_text(root.root, keep_cells=True) if not isinstance(root.root, str) else ""
        return html.escape(after_label(page_text, spec[len(LABEL_PREFIX) :].strip()))
    parts: list[str] = []
    for node in select(root, spec):
        if isinstance(node.root, str):
            parts.append(html.escape(node.root))
        elif isinstance(node.root, bool | int | float):
            parts.append(html.escape(str(node.root)))
        else:
            parts.append(node.get())
    return "\n".join(p for p in parts if p and p.strip())


def extract_text_value(root: Selector, spec: str) -> str:
    """The first plain-text value a selector finds (links, ids); '' when nothing matches."""
    if spec.startswith(LABEL_PREFIX):
        return html.unescape(extract_fragment(root, spec))
    for node in select(root, spec):
        if isinstance(node.root, str):
            value = node.root.strip()
        elif isinstance(node.root, bool | int | float):
            value = str(node.root)
        else:
            value = element_to_text(node.root)
        if value:
            return value
    return ""


def load_js(text: str) -> Any:
    """The first JavaScript object or array literal of a text (``var data = {a: 'b', c: [1,2,],}``).

    Read by chompjs, a maintained parser of JS literals (unquoted keys, single quotes, trailing commas,
    comments); the script is never run. ExtractionError when the text holds no literal.
    """
    try:
        return chompjs.parse_js_object(text)
    except (ValueError, TypeError) as exc:
        raise ExtractionError(f"不是 JavaScript 对象字面量: {exc}") from exc


def load_json(text: str) -> Any:
    """Parse a JSON (or JSONP ``callback({...})``, or non-strict JSON) body; ExtractionError otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        # Non-strict JSON some 留言板 back ends write: single quotes, unquoted keys, trailing commas.
        return load_js(stripped)
    # JSONP: ``callback( ... );`` found with plain string operations, no regex over the body.
    body = text.strip().removesuffix(";").rstrip()
    start = body.find("(")
    if start > 0 and body.endswith(")") and _CALLBACK_NAME.fullmatch(body[:start].strip()):
        try:
            return json.loads(body[start + 1 : -1])
        except ValueError as exc:
            raise ExtractionError(f"not JSON: {exc}") from exc
    raise ExtractionError("not JSON (nor JSONP)")


def json_path(data: Any, path: str) -> Any:
    """Follow a dotted path (``data.list``, ``replies.0.content``); None where it leads nowhere."""
    if path in ("", "."):
        return data
    current = data
    for key in path.split("."):
        if isinstance(current, dict):
            current = current.get(key)
        elif isinstance(current, list) and key.lstrip("-").isdigit():
            index = int(key)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


def json_fragment(value: Any, markup: bool) -> str:
    """A JSON value as an HTML fragment: markup fields (content, reply) as given, others escaped."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(json_fragment(v, markup) for v in value)
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    return text if markup else html.escape(text)


def looks_like_challenge(body: str) -> bool:
    """True when a page reads like a WAF/anti-bot interstitial rather than content."""
    head = body[:20000]
    return any(marker in head for marker in _CHALLENGE_MARKERS)


_CDATA_OPEN = "<![CDATA["
_CDATA_CLOSE = "]]>"


def unwrap_cdata(text: str) -> str:
    """The contents of every CDATA section of an XML body, joined (大汉 JCMS dataproxy records).

    Found with plain string search. A body without CDATA is returned as it is.
    """
    parts = []
    start = 0
    while (left := text.find(_CDATA_OPEN, start)) >= 0:
        right = text.find(_CDATA_CLOSE, left + len(_CDATA_OPEN))
        if right < 0:
            parts.append(text[left + len(_CDATA_OPEN) :])
            break
        parts.append(text[left + len(_CDATA_OPEN) : right])
        start = right + len(_CDATA_CLOSE)
    return "\n".join(parts) if parts else text


def html_selector(text: str) -> Selector:
    """An HTML selector over a text, whatever the response's Content-Type said."""
    return Selector(text=text, type="html")
