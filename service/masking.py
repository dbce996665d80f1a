"""Personal-data masking: the one place that knows what a phone, ID card, bank card number or e-mail looks like.

Detection runs on a per-character NFKC view of the text (full-width ``１３８－…`` reads as ``138-…``) while
the replacement is made in the original text, character for character: a masked text has the length of
the original, so offsets computed on one hold in the other (snippets are cut from the masked text).
Characters whose NFKC form is longer than one character, and "other numbers" such as ``①`` or ``²``, are
left as they are: folding ``①`` into ``1`` would glue an enumeration mark onto a phone number and hide it.

Shapes and trade-offs (false positives cost readability, false negatives leak personal data); recall
and false-positive rates are measured by benchmarks/masking.py on a generated corpus (BENCHMARKS.md):
- mobile: ``1[3-9]`` + 9 digits in 3-4-4 or 4-3-4 groups separated by nothing, a space, ``-`` or ``.``,
  optionally ``+86``/``0086``/``86``/``0`` before; kept ``138****5678``. Two or three mobiles run together
  (22 or 33 digits) are each masked.
- fixed line: ``0`` + 2-3 digit area code (optionally in parentheses, optionally after ``+86``) + 7-8 digits
  (a separator allowed inside); the area code and the last 4 digits stay. Local numbers without an area
  code are not masked: 7-8 bare digits are too often counts, amounts or dates.
- ID card: 18 digits (last may be X) or 15 digits whose birth-date part is a real-looking date, bare or
  split after the area, year and month-day parts; kept ``110101********1234``. An 18-digit one must carry
  its GB 11643 check character unless 身份证/证件/证号 precedes it: 18-digit work-order numbers
  (date + serial) otherwise look alike.
- bank card: 16-19 digits in groups of 4 (the grouping says "card"), or bare when the Luhn check holds and
  the first digit is one card schemes use (3-6, 9): bare work-order numbers start with a year and fail it;
  right after 卡/账号/账户 a bare 16-19 digit number is masked whatever its check digit.
- e-mail: the local part but its first character.
- QQ numbers after ``QQ``/``扣扣``: first and last two digits stay.
- A number glued to Latin letters or other digits is not taken (``GD2023072110300001``, hashes, ids):
  work-order numbers and identifiers are usually letter-prefixed. Known prefixes are the exception:
  ``qq13812345678``, ``wx…``, ``vx…``, ``Tel…``, ``phone…``, ``mobile…`` are masked like ``电话13812345678``.
  Dates and times (``2023-07-21 10:00``, ``20230721``, 13-digit millisecond timestamps) fit none of the shapes.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from contextvars import ContextVar
from functools import cache
from typing import Protocol, TypeVar, cast

import numpy as np
from pydantic import BaseModel


class Viewer(Protocol):
    """Whoever is shown the data (``service.principal.Principal``); masking needs to know one thing."""

    @property
    def sees_personal_data(self) -> bool: ...


MASK = "*"
T = TypeVar("T")

# Latin-letter prefixes people glue onto a number ("qq13812345678"); lower case, the pattern ignores case.
_PREFIXES = ("qq", "wx", "vx", "tel", "phone", "mobile", "mob", "cell", "fax", "weixin", "wechat", "no", "sfz", "id")
# Every prefix ends in a letter: inside a run of digits the one-character test fails at once instead of
# trying each prefix at every position of the run (that was two thirds of the time to mask a phone number).
_BEFORE = "(?:(?<![0-9A-Za-z])|(?<=[A-Za-z])(?:" + "|".join(f"(?<={p})" for p in _PREFIXES) + "))"
_NOT_DIGIT_AFTER = r"(?![0-9])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
_S = r"[-. ]?"  # one optional separator (NFKC folds full-width ones into these)
_MONTH = r"(?:0[1-9]|1[0-2])"
_DAY = r"(?:0[1-9]|[12][0-9]|3[01])"
_MOBILE = rf"1[3-9][0-9](?:{_S}[0-9]{{4}}{_S}[0-9]{{4}}|[0-9]{_S}[0-9]{{3}}{_S}[0-9]{{4}})"

_PATTERN = re.compile(
    "|".join(
        (
            # e-mail first: its local part may itself look like a phone number.
            r"(?<![0-9A-Za-z._%+-])(?P<email>[A-Za-z0-9][A-Za-z0-9._%+-]*)@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
            r"\.[A-Za-z]{2,}",
            rf"{_BEFORE}(?P<mobiles>(?:1[3-9][0-9]{{9}}){{2,3}}){_NOT_DIGIT_AFTER}",
            rf"{_BEFORE}(?:(?:\+|00)?86{_S}|0)?(?P<mobile>{_MOBILE}){_NOT_DIGIT_AFTER}",
            rf"{_BEFORE}(?P<fixed>(?P<area>(?:\+|00)86{_S}\(?0?[1-9][0-9]{{1,2}}\)?|\(?0[1-9][0-9]{{1,2}}\)?)"
            rf"{_S}[0-9]{{3,4}}{_S}[0-9]{{4}}){_NOT_DIGIT_AFTER}",
            rf"{_BEFORE}(?P<id18>[0-9]{{6}}{_S}(?:1[89][0-9]{{2}}|20[0-2][0-9]){_S}{_MONTH}{_S}{_DAY}{_S}[0-9]{{3}}{_S}[0-9Xx])"
            + _NOT_ALNUM_AFTER,
            rf"{_BEFORE}(?P<id15>[0-9]{{6}}{_S}[0-9]{{2}}{_MONTH}{_DAY}{_S}[0-9]{{3}}){_NOT_ALNUM_AFTER}",
            rf"{_BEFORE}(?P<card>[0-9]{{4}}(?:[- ][0-9]{{4}}){{3}}(?:[- ]?[0-9]{{1,3}})?){_NOT_ALNUM_AFTER}",
            rf"{_BEFORE}(?P<bare>[0-9]{{16,19}}){_NOT_ALNUM_AFTER}",
            # QQ numbers; a mobile after "qq" is left to the mobile shape.
            r"(?<![A-Za-z])(?:qq|扣扣)(?:号码|号)?[:： ]?(?!1[3-9][0-9]{9}(?![0-9]))(?P<qq>[1-9][0-9]{4,10})"
            + _NOT_DIGIT_AFTER,
        )
    ),
    re.IGNORECASE,
)

# Every match lies inside one run of these characters; the lookbehinds still see the text before a run.
# What every masked number or address holds (after folding): four ASCII digits in a row (each shape of
# _PATTERN has such a run: QQ 5+, ID 6, the last group of a phone or card 4) or an at sign. Short counts
# ("关联条目2条", "第3次") then cost one scan, not the full pattern.
_MAYBE_MASKED = re.compile(r"[0-9]{4}|@")
# The same test on the text as written, before folding: only decimal digits (\d) fold into ASCII digits
# and only these two fold into "@" (checked over every code point by tests/masking), so a text without
# such a run is left as it is without building its folded view.
_RAW_MAYBE_MASKED = re.compile(r"\d{4}|[@\uff20\ufe6b]")
# Maximal runs of these characters; only a run that passes _MAYBE_MASKED can hold a match. (A pattern
# asking for a digit inside the run backtracked over every run without one: quadratic in a URL's words.)
_SEGMENT = re.compile(r"[0-9A-Za-z@._%+()\-: ：号码扣]+")

# (digits kept at the start, digits kept at the end) per shape; "fixed" keeps its area code instead.
_KEEP = {
    "mobile": (3, 4),
    "id18": (6, 4),
    "id15": (6, 3),
    "card": (4, 4),
    "bare": (4, 4),
    "qq": (2, 2),
    "email": (1, 0),
}
_SHAPES = ("email", "mobiles", "mobile", "fixed", "id18", "id15", "card", "bare", "qq")
_CARD_FIRST = "34569"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# An 18-digit number after these words is an ID number even when its check character is wrong.
_ID_WORDS = ("身份证", "证件", "证号", "sfz", "SFZ", "ID", "id")
# A bare number right after these words is a card or account number even when Luhn fails (some do).
_CARD_WORDS = ("卡", "账号", "帐号", "账户", "帐户", "card", "Card", "CARD")


class _Fold(dict[int, int]):
    """``str.translate`` table: a character's NFKC form when that is one character, else itself (cached)."""

    def __missing__(self, code: int) -> int:
        char = chr(code)
        folded = char
        if unicodedata.category(char) != "No":  # ① ² stay: folding would glue them onto a number
            nfkc = unicodedata.normalize("NFKC", char)
            if len(nfkc) == 1:
                folded = nfkc
        self[code] = ord(folded)
        return self[code]


_FOLD = _Fold()


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _id_check(digits: list[str]) -> str:
    """The GB 11643 check character of the first 17 digits of an ID number."""
    total = sum((ord(c) - 48) * w for c, w in zip(digits, _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def _view(text: str) -> str:
    """The text as detection reads it; same length as ``text``, so positions map one to one."""
    if text.isascii():
        return text
    try:
        units = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
    except UnicodeEncodeError:  # a lone surrogate
        return text.translate(_FOLD)
    if len(units) != len(text):  # characters beyond the BMP
        return text.translate(_FOLD)
    # One table look-up per character in C (str.translate calls into the table's dict per character).
    view: str = codecs.utf_16_le_decode(_bmp_view().take(units).tobytes())[0]
    return view if _BEYOND not in view else text.translate(_FOLD)


# Marks, in the table, a BMP character whose form lies beyond the BMP (a few CJK compatibility ideographs);
# a text holding one (or this noncharacter itself) is read through _FOLD.
_BEYOND = "\uffff"


@cache
def _bmp_view() -> np.ndarray:
    """``_FOLD`` for every character of the BMP as a table (surrogates kept; texts with them use _FOLD)."""
    table = np.arange(0x10000, dtype=np.uint32)
    for code in range(0x10000):
        if not 0xD800 <= code < 0xE000:
            table[code] = _FOLD[code] if _FOLD[code] < 0x10000 else ord(_BEYOND)
    return table.astype(np.uint16)


def _hidden(view: str, match: re.Match[str]) -> list[int]:
    """Positions of ``view`` that the masked form of ``match`` replaces; empty when the match is no number."""
    shape = next(name for name in _SHAPES if match.group(name) is not None)
    start, end = match.span(shape)
    if shape == "email":
        return list(range(start + 1, end))
    positions = [i for i in range(start, end) if view[i] in "0123456789Xx"]
    if shape == "mobiles":
        out: list[int] = []
        for k in range(0, len(positions), 11):
            out += positions[k + 3 : k + 7]
        return out
    if shape == "id18":
        said_id = any(word in view[max(0, start - 8) : start] for word in _ID_WORDS)
        if not said_id and _id_check([view[i] for i in positions[:17]]) != view[positions[17]].upper():
            # Not an ID number; 18 bare digits may still be a bank card.
            digits = match.group("id18")
            if not digits.isdigit():
                return []
            shape = "bare"
    if shape == "bare":
        digits = "".join(view[i] for i in positions)
        said_card = any(word in view[max(0, start - 8) : start] for word in _CARD_WORDS)
        if not said_card and (digits[0] not in _CARD_FIRST or not _luhn(digits)):
            return []
    if shape == "fixed":
        area = match.group("area")
        head = sum(1 for c in area if c.isdigit())
        tail = 4
    else:
        head, tail = _KEEP[shape]
    return positions[head : len(positions) - tail]


def mask_text(text: str) -> str:
    """``text`` with phone, ID card and bank card numbers and e-mail addresses partly replaced by ``*``.

    The result has the length of ``text``. Mask a whole text, then cut it: a cut number can stop looking
    like a number (see ``mask_then_cut``).
    """
    if not text or _RAW_MAYBE_MASKED.search(text) is None:
        return text
    view = _view(text)
    if _MAYBE_MASKED.search(view) is None:  # most texts: one scan in C, no Python loop per character
        return text
    out: list[str] | None = None
    # The full pattern only runs over stretches that can hold a match (digits, letters, separators):
    # most of a Chinese text is skipped at the speed of one character-class scan.
    for segment in _SEGMENT.finditer(view):
        start, end = segment.span()
        if _MAYBE_MASKED.search(view, start, end) is None:
            continue
        for match in _PATTERN.finditer(view, start, end):
            for i in _hidden(view, match):
                if out is None:
                    out = list(text)
                out[i] = MASK
    return "".join(out) if out is not None else text


def mask_then_cut(text: str, limit: int, ellipsis: str = "…") -> str:
    """The first ``limit`` characters of the masked ``text`` (``ellipsis`` added when something was cut)."""
    masked = mask_text(text)
    return masked if len(masked) <= limit else masked[:limit] + ellipsis


# Codes the product or a source made up, never a citizen's data. A digit run inside one can look like a
# number (item id ``083678717668bd31…`` reads as the fixed line 0836-78717668), and masking it broke the
# links built from it: about one alert in 800 pointed at an item that does not exist.
_CODE_KEYS = frozenset({"id", "source", "department", "channel"})


def _is_code(key: object) -> bool:
    return isinstance(key, str) and (key in _CODE_KEYS or key.endswith(("_id", "_ids")))


def mask_value(obj: T, fields: Iterable[str] | None = None) -> T:
    """A copy of ``obj`` with every string inside masked but identifiers; ``fields`` limits it to those
    top-level keys."""
    only = set(fields) if fields is not None else None
    if isinstance(obj, str):
        return cast(T, mask_text(obj))
    if isinstance(obj, BaseModel):
        names = type(obj).model_fields
        update = {n: mask_value(getattr(obj, n)) for n in names if (only is None or n in only) and not _is_code(n)}
        return obj.model_copy(update=update)
    if isinstance(obj, dict):
        return cast(
            T, {k: (mask_value(v) if (only is None or k in only) and not _is_code(k) else v) for k, v in obj.items()}
        )
    if isinstance(obj, list | tuple):
        return type(obj)(mask_value(v, only) for v in obj)
    return obj


# Per request: what was shown unmasked to an admin, so the request can be audited as a reveal.
_reveals: ContextVar[list[str] | None] = ContextVar("yuqing_reveals", default=None)


def collect_reveals() -> list[str]:
    """Start collecting reveals for the current request; the returned list fills as data is shown."""
    box: list[str] = []
    _reveals.set(box)
    return box


def take_reveals() -> list[str]:
    """What the current request has shown unmasked so far (sorted, once each), and start afresh."""
    box = _reveals.get()
    if not box:
        return []
    kinds = sorted(set(box))
    box.clear()
    return kinds


def note_reveal(obj: object, fields: Iterable[str] | None = None) -> None:
    """Record that ``obj`` is shown unmasked, when it holds personal data at all."""
    box = _reveals.get()
    if box is not None and mask_value(obj, fields) != obj:
        box.append(type(obj).__name__)


def mask_for(principal: Viewer, obj: T, fields: Iterable[str] | None = None) -> T:
    """``obj`` as ``principal`` may see it: unchanged for roles that see personal data, masked otherwise."""
    if principal.sees_personal_data:
        note_reveal(obj, fields)
        return obj
    return mask_value(obj, fields)
