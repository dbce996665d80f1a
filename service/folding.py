"""Case and width folding (NFKC + casefold) that remembers where each folded character came from.

Rules and texts are folded alike, so ``ＡＢＣ``, ``abc`` and ``Abc`` match each other and so do full-width
and half-width digits and punctuation. Folding can change lengths (``……`` becomes six dots, ``㎡``
becomes ``m2``), so a :class:`Folded` text maps spans of the folded text back to the original characters:
highlights and NEAR distances are always in original characters, which is what a user sees.

Folding is applied per character, or per cluster (a character and the combining marks after it) when the
text or its per-character folding is not in NFC, so that ``e`` + combining acute folds like ``é``. A
folded character never maps to nothing, which the offset map relies on. Known gap: compositions of two
base characters (half-width katakana ``ｶﾞ``) are not joined; such text does not occur in our sources.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache

# Blocks with no compatibility decomposition and no case mapping (CJK ideographs, Hangul syllables,
# surrogates, private use, unassigned planes): skipped when tabulating, which keeps start-up to ~0.3 s.
_STABLE_BLOCKS = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0xD800, 0xF8FF),
    (0x20000, 0x2F7FF),
    (0x2FA20, 0xDFFFF),
    (0xF0000, 0x10FFFF),
)


@lru_cache(maxsize=65536)
def fold_char(text: str) -> str:
    """Fold one character (or one cluster): NFKC, casefold, NFKC again (casefold can denormalise)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


# Characters frequent in Chinese complaints that fold: str.replace on each is far cheaper than a regex
# substitution calling back per occurrence. The regex then handles whatever rarer ones remain.
_COMMON = "，：；！？（）…０１２３４５６７８９\u3000℃㎡"


@dataclass(frozen=True)
class _Tables:
    changing: dict[int, str]  # code point -> folded text, only where folding changes it
    common: tuple[tuple[str, str], ...]
    changing_runs: re.Pattern[str]
    expanding: re.Pattern[str]


def _char_class(code_points: list[int]) -> str:
    # Built from Unicode data only, never from user text.
    parts: list[str] = []
    start = prev = None
    for cp in [*code_points, None]:
        if cp is not None and prev is not None and cp == prev + 1:
            prev = cp
            continue
        if start is not None and prev is not None:
            parts.append(re.escape(chr(start)) if start == prev else f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
        start = prev = cp
    return "".join(parts)


@cache
def _tables() -> _Tables:
    changing: dict[int, str] = {}
    begin = 0
    for first, last in (*_STABLE_BLOCKS, (0x110000, 0x110000)):
        for cp in range(begin, first):
            char = chr(cp)
            folded = fold_char(char)
            if folded != char:
                changing[cp] = folded
        begin = last + 1
    expanding = sorted(cp for cp, folded in changing.items() if len(folded) != 1 and cp < 0x10000)
    # The regex engine tests a BMP class in one bitmap lookup but walks astral ranges one by one, so
    # astral characters are all let through as one range and sorted out by the table (rare in our text).
    # One class (not an alternation) so the engine can skip ahead with its charset prefix scan.
    astral = "\U00010000-\U0010ffff"
    bmp_changing = _char_class(sorted(cp for cp in changing if cp < 0x10000))
    return _Tables(
        changing=changing,
        common=tuple((char, changing[ord(char)]) for char in _COMMON),
        changing_runs=re.compile(f"[{bmp_changing}{astral}]+"),
        expanding=re.compile(f"[{_char_class(expanding)}{astral}]"),
    )


@dataclass(frozen=True)
class Folded:
    """A folded text with the map from folded offsets back to the original text's offsets."""

    original: str
    text: str
    # Segments where folded and original lengths differ: parallel lists of folded start, original start,
    # folded length and original length. Between segments the two texts advance one to one.
    seg_folded_start: tuple[int, ...] = ()
    seg_orig_start: tuple[int, ...] = ()
    seg_folded_len: tuple[int, ...] = ()
    seg_orig_len: tuple[int, ...] = ()

    def _orig_unit(self, index: int) -> tuple[int, int]:
        """The original span of the character (or cluster) that produced folded character ``index``."""
        i = bisect.bisect_right(self.seg_folded_start, index) - 1
        if i < 0:
            return index, index + 1
        f_start = self.seg_folded_start[i]
        o_start = self.seg_orig_start[i]
        f_len = self.seg_folded_len[i]
        o_len = self.seg_orig_len[i]
        if index < f_start + f_len:
            return o_start, o_start + o_len
        pos = o_start + o_len + (index - f_start - f_len)
        return pos, pos + 1

    def spans(self, ends: list[int], length: int) -> list[tuple[int, int]]:
        """Distinct original spans of the folded matches of ``length`` characters ending at ``ends``.

        ``ends`` are ascending and inclusive, as the automaton reports them.
        """
        if not self.seg_folded_start:
            return [(end - length + 1, end + 1) for end in ends]
        f_starts, f_ends, o_starts, o_ends, shifts = self._arrays
        # Per folded index x, j is the last segment starting at or before it: inside the segment x maps
        # to the segment's original span, after it x moves by the segment's accumulated shift.
        starts = [
            x if (j := bisect.bisect_right(f_starts, x) - 1) < 0 else o_starts[j] if x < f_ends[j] else x + shifts[j]
            for x in [end - length + 1 for end in ends]
        ]
        stops = [
            x + 1
            if (j := bisect.bisect_right(f_starts, x) - 1) < 0
            else o_ends[j]
            if x < f_ends[j]
            else x + shifts[j] + 1
            for x in ends
        ]
        # Matches inside one expansion (... in the six dots of ……) map to the same original span: keep one.
        return list(dict.fromkeys(zip(starts, stops, strict=True)))

    @cached_property
    def _arrays(self) -> tuple[tuple[int, ...], ...]:
        f_ends = tuple(f + n for f, n in zip(self.seg_folded_start, self.seg_folded_len, strict=True))
        o_ends = tuple(o + n for o, n in zip(self.seg_orig_start, self.seg_orig_len, strict=True))
        shifts = tuple(o - f for o, f in zip(o_ends, f_ends, strict=True))
        return self.seg_folded_start, f_ends, self.seg_orig_start, o_ends, shifts

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map the folded span ``[start, end)`` (non-empty) to the original span covering it."""
        if not self.seg_folded_start:
            return start, end
        return self._orig_unit(start)[0], self._orig_unit(end - 1)[1]


def _fold_by_cluster(text: str) -> Folded:
    pieces: list[str] = []
    seg: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    f_pos = 0
    i = 0
    n = len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        folded = fold_char(text[i:j])
        if not folded:  # never seen in Unicode 14; keep the offset map total anyway
            folded = text[i:j]
        if len(folded) != 1 or j - i != 1:
            for lst, value in zip(seg, (f_pos, i, len(folded), j - i), strict=True):
                lst.append(value)
        pieces.append(folded)
        f_pos += len(folded)
        i = j
    return Folded(text, "".join(pieces), *(tuple(lst) for lst in seg))


def fold(text: str) -> Folded:
    """Fold ``text`` for matching; see the module docstring for what folding means."""
    if not unicodedata.is_normalized("NFC", text):
        return _fold_by_cluster(text)
    tables = _tables()
    table = tables.changing
    folded = text
    expanded: list[int] = []  # original offsets of characters that fold to several
    offsets_known = True  # False once the rarer characters were folded by the regex below
    for char, replacement in tables.common:
        if char in folded:
            folded = folded.replace(char, replacement)
            if len(replacement) != 1:
                pos = text.find(char)
                while pos >= 0:
                    expanded.append(pos)
                    pos = text.find(char, pos + 1)
    # Two C-speed checks prove nothing else folds; otherwise a regex finds the rarer characters.
    if not (unicodedata.is_normalized("NFKC", folded) and folded.casefold() == folded):
        folded = tables.changing_runs.sub(lambda m: m.group().translate(table), folded)
        offsets_known = False
        if not unicodedata.is_normalized("NFC", folded):
            # Folding produced something composable (ß + combining acute -> s + ś): fold by cluster so
            # the result does not depend on whether the rest of the text was in NFC.
            return _fold_by_cluster(text)
    if len(folded) == len(text):
        # Every character folds to at least one character, so equal lengths mean one to one.
        return Folded(text, folded)
    if not offsets_known:
        expanded = [m.start() for m in tables.expanding.finditer(text)]
    else:
        expanded.sort()
    seg: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    shift = 0
    for o_start in expanded:
        f_len = len(table.get(ord(text[o_start]), "x"))
        if f_len == 1:
            continue  # an astral character that does not expand
        for lst, value in zip(seg, (o_start + shift, o_start, f_len, 1), strict=True):
            lst.append(value)
        shift += f_len - 1
    return Folded(text, folded, *(tuple(lst) for lst in seg))


def fold_term(text: str) -> str:
    """The folded form of a rule term (what the automaton looks for)."""
    return fold(text).text
