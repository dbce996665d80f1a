"""``unicodedata.normalize("NFKC", text)`` for whole item texts, a few C-speed passes instead of one.

Repost detection normalises every crawled title and body. CPython's NFKC decomposes and recomposes a text
character by character as soon as it holds one character that changes (a full-width comma does, and almost
every Chinese text has one): about a quarter of a millisecond for a complaint of 400 characters. Here each
character of the Basic Multilingual Plane is looked up in a table of its own NFKC form, and the result is
accepted only when it is itself in NFKC, which is then NFKC of the text: normalising each character keeps the
text compatibility-equivalent, and the normal form of equivalent texts is one. Anything else (combining
marks that compose, characters beyond the BMP) takes ``unicodedata.normalize``.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np

_BMP = 0x10000
# Stands for a character whose NFKC form is several characters (……, ℃, ㎡): put in after the look-up.
# A noncharacter, so text that holds it itself is rare; such text is handled correctly all the same.
_SEVERAL = "\uffff"


@dataclass(frozen=True)
class _Table:
    forms: np.ndarray  # uint16 [code point]: its NFKC form when that is one BMP character, else _SEVERAL
    several: dict[str, str]  # character -> its NFKC form, where that is not one BMP character


@cache
def _table() -> _Table:
    forms = np.arange(_BMP, dtype=np.uint32)
    several: dict[str, str] = {}
    for cp in range(_BMP):
        if 0xD800 <= cp < 0xE000:  # surrogates: never decoded from UTF-16 as themselves; kept
            continue
        char = chr(cp)
        if unicodedata.is_normalized("NFKC", char):
            continue
        form = unicodedata.normalize("NFKC", char)
        if len(form) == 1 and ord(form) < _BMP and form != _SEVERAL:
            forms[cp] = ord(form)
        else:
            forms[cp] = ord(_SEVERAL)
            several[char] = form
    several[_SEVERAL] = _SEVERAL
    return _Table(forms.astype(np.uint16), several)


def nfkc(text: str) -> str:
    """Equal to ``unicodedata.normalize("NFKC", text)`` (tests/items/test_nfkc.py holds it to that)."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    try:
        units = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
    except UnicodeEncodeError:  # a lone surrogate
        return unicodedata.normalize("NFKC", text)
    if len(units) != len(text):  # characters beyond the BMP (UTF-16 surrogate pairs)
        return unicodedata.normalize("NFKC", text)
    table = _table()
    mapped: str = codecs.utf_16_le_decode(table.forms.take(units).tobytes())[0]
    if _SEVERAL in mapped:
        parts = mapped.split(_SEVERAL)
        out = [parts[0]]
        position = len(parts[0])
        for part in parts[1:]:
            out += (table.several[text[position]], part)
            position += 1 + len(part)
        mapped = "".join(out)
    return mapped if unicodedata.is_normalized("NFKC", mapped) else unicodedata.normalize("NFKC", text)
