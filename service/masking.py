"""Personal-data masking: the one place that knows what a phone, ID card or bank card number looks like.

Detection runs on a per-character NFKC view of the text (full-width ``１３８－…`` reads as ``138-…``) while
the replacement is made in the original text, so everything but the masked digits stays as it was.
Characters whose NFKC form is longer than one character, and "other numbers" such as ``①`` or ``²``, are
left as they are: folding ``①`` into ``1`` would glue an enumeration mark onto a phone number and hide it.

Shapes and trade-offs (false positives cost readability, false negatives leak personal data):
- mobile: ``1[3-9]`` + 9 digits, optionally ``+86``/``0086``/``86`` before and ``-``/space between 3-4-4
  groups; kept ``138****5678``.
- fixed line: ``0`` + 2-3 digit area code (optionally in parentheses) + 7-8 digits, with or without a
  separator; the area code and the last 4 digits stay. Local numbers without an area code are not masked:
  7-8 bare digits are too often counts, amounts or dates.
- ID card: 18 digits (last may be X) or 15 digits whose birth-date part is a real-looking date; kept
  ``110101********1234``.
- bank card: 16-19 digits, bare or in groups of 4; first and last 4 stay. A work-order number of that
  exact shape is masked too (we do not check Luhn: some Chinese debit cards fail it).
- A number glued to Latin letters or other digits is not taken (``GD2023072110300001``, hashes, ids):
  work-order numbers and identifiers are usually letter-prefixed. ``Tel13812345678`` is therefore left
  alone; ``Tel:13812345678`` and ``电话13812345678`` are masked. Dates and times (``2023-07-21 10:00``,
  ``20230721``, 13-digit millisecond timestamps) fit none of the shapes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from service.auth.principal import Principal

MASK = "*"
T = TypeVar("T")

_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
_SEP = r"[- ]?"
_MONTH = r"(?:0[1-9]|1[0-2])"
_DAY = r"(?:0[1-9]|[12][0-9]|3[01])"

_PATTERN = re.compile(
    _NOT_ALNUM_BEFORE
    + "(?:"
    + rf"(?:(?:\+|00)?86{_SEP})?(?P<mobile>1[3-9][0-9](?:{_SEP}[0-9]{{4}}){{2}})"
    + rf"|(?P<fixed>(?P<area>\(?0[0-9]{{2,3}}\)?){_SEP}[0-9]{{7,8}})"
    + rf"|(?P<id18>[0-9]{{6}}(?:18|19|20)[0-9]{{2}}{_MONTH}{_DAY}[0-9]{{3}}[0-9Xx])"
    + rf"|(?P<id15>[0-9]{{8}}{_MONTH}{_DAY}[0-9]{{3}})"
    + rf"|(?P<bank>[0-9]{{4}}(?:{_SEP}[0-9]{{4}}){{3}}(?:{_SEP}[0-9]{{1,3}})?)"
    + ")"
    + _NOT_ALNUM_AFTER
)

# (digits kept at the start, digits kept at the end) per shape; "fixed" keeps its area code instead.
_KEEP = {"mobile": (3, 4), "id18": (6, 4), "id15": (6, 3), "bank": (4, 4)}
_SHAPES = ("mobile", "fixed", "id18", "id15", "bank")


def _fold(char: str) -> str:
    """NFKC of one character when that keeps it one character and it is not an enumerator like ①."""
    if char.isascii() or unicodedata.category(char) == "No":
        return char
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 else char


def mask_text(text: str) -> str:
    """``text`` with phone, ID card and bank card numbers partly replaced by ``*``."""
    if not text:
        return text
    view = "".join(_fold(c) for c in text)  # same length as text: positions map one to one
    if not any("0" <= c <= "9" for c in view):
        return text
    out = list(text)
    for match in _PATTERN.finditer(view):
        shape = next(name for name in _SHAPES if match.group(name) is not None)
        start, end = match.span(shape)
        positions = [i for i in range(start, end) if view[i] in "0123456789Xx"]
        if shape == "fixed":
            head = sum(1 for c in match.group("area") if c.isdigit())
            tail = 4
        else:
            head, tail = _KEEP[shape]
        for i in positions[head : len(positions) - tail]:
            out[i] = MASK
    return "".join(out)


def mask_value(obj: T, fields: Iterable[str] | None = None) -> T:
    """A copy of ``obj`` with every string inside masked; ``fields`` limits it to those top-level keys."""
    only = set(fields) if fields is not None else None
    if isinstance(obj, str):
        return mask_text(obj)  # type: ignore[return-value]
    if isinstance(obj, BaseModel):
        names = type(obj).model_fields
        update = {n: mask_value(getattr(obj, n)) for n in names if only is None or n in only}
        return obj.model_copy(update=update)
    if isinstance(obj, dict):
        return {k: (mask_value(v) if only is None or k in only else v) for k, v in obj.items()}  # type: ignore[return-value]
    if isinstance(obj, list | tuple):
        return type(obj)(mask_value(v, only) for v in obj)  # type: ignore[return-value]
    return obj


# Per request: what was shown unmasked to an admin, so the request can be audited as a reveal.
_reveals: ContextVar[list[str] | None] = ContextVar("yuqing_reveals", default=None)


def collect_reveals() -> list[str]:
    """Start collecting reveals for the current request; the returned list fills as data is shown."""
    box: list[str] = []
    _reveals.set(box)
    return box


def note_reveal(obj: object, fields: Iterable[str] | None = None) -> None:
    """Record that ``obj`` is shown unmasked, when it holds personal data at all."""
    box = _reveals.get()
    if box is not None and mask_value(obj, fields) != obj:
        box.append(type(obj).__name__)


def mask_for(principal: Principal, obj: T, fields: Iterable[str] | None = None) -> T:
    """``obj`` as ``principal`` may see it: unchanged for roles that see personal data, masked otherwise."""
    if principal.sees_personal_data:
        note_reveal(obj, fields)
        return obj
    return mask_value(obj, fields)
