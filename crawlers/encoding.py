"""Choosing the charset of pages whose headers and <meta> lie, as old GBK government sites often do."""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom, resolve_encoding

# What Chinese sites mean by gb2312/gbk; gb18030 decodes all of them.
_CHINESE_DEFAULT = "gb18030"


def _decodes(body: bytes, encoding: str, tolerance: float = 0.0) -> bool:
    """Whether the body decodes, allowing ``tolerance`` (a share of characters) of broken bytes."""
    try:
        if not tolerance:
            body.decode(encoding)
            return True
        text = body.decode(encoding, errors="replace")
    except UnicodeDecodeError:
        return False
    except LookupError:
        return False
    return text.count("\ufffd") <= tolerance * len(text) + 1


def choose_encoding(body: bytes, content_type: str | None = None, configured: str | None = None) -> str:
    """The encoding to read ``body`` with: configured, else BOM, else a declaration that fits, else detected.

    A declared charset (header or <meta>) is used only when the body really decodes with it: a GBK
    page served as ``charset=utf-8`` is read as GBK, not as replacement characters, and a UTF-8 page
    whose <meta> claims gb2312 is read as UTF-8.
    """
    if configured:
        return resolve_encoding(configured) or configured
    bom, _ = read_bom(body)
    if bom:
        return bom
    # Valid UTF-8 is almost never an accident, while UTF-8 bytes often decode as GB18030 garbage: a
    # page that decodes as UTF-8 is UTF-8 whatever its <meta> says.
    if _decodes(body, "utf-8"):
        return "utf-8"
    declared = [
        http_content_type_encoding(content_type) if content_type else None,
        html_body_declared_encoding(body),
    ]
    for candidate in declared:
        # One stray byte in a long page is damage, not a wrong declaration.
        if candidate and _decodes(body, candidate, tolerance=0.001):
            return candidate
    for tolerance in (0.0, 0.001):
        for candidate in ("utf-8", _CHINESE_DEFAULT):
            if _decodes(body, candidate, tolerance):
                return candidate
    best = from_bytes(body[:65536]).best()
    if best is not None:
        name = codecs.lookup(best.encoding).name
        return resolve_encoding(name) or name
    return _CHINESE_DEFAULT


def decode_body(body: bytes, content_type: str | None = None, configured: str | None = None) -> str:
    """The body as text, undecodable bytes replaced."""
    return body.decode(choose_encoding(body, content_type, configured), errors="replace")
