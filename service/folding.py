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
import codecs
import hashlib
import marshal
import re
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

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


def _changing_points() -> dict[int, str]:
    changing: dict[int, str] = {}
    for cp in _unstable_code_points():
        char = chr(cp)
        folded = fold_char(char)
        if folded != char:
            changing[cp] = folded
    return changing


@cache
def _tables() -> _Tables:
    changing = _kept_or_built().changing
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


class Folded:
    """A folded text with the map from folded offsets back to the original text's offsets (immutable).

    A plain class with slots rather than a dataclass: two are made for every item matched.
    """

    __slots__ = (
        "_segments",
        "original",
        "seg_folded_len",
        "seg_folded_start",
        "seg_orig_len",
        "seg_orig_start",
        "text",
    )

    def __init__(
        self,
        original: str,
        text: str,
        seg_folded_start: tuple[int, ...] = (),
        seg_orig_start: tuple[int, ...] = (),
        seg_folded_len: tuple[int, ...] = (),
        seg_orig_len: tuple[int, ...] = (),
    ) -> None:
        self.original = original
        self.text = text
        # Segments where folded and original lengths differ: parallel lists of folded start, original
        # start, folded length and original length. Between segments the two texts advance one to one.
        self.seg_folded_start = seg_folded_start
        self.seg_orig_start = seg_orig_start
        self.seg_folded_len = seg_folded_len
        self.seg_orig_len = seg_orig_len
        self._segments: tuple[tuple[int, ...], ...] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Folded) and self._key() == other._key()

    def __repr__(self) -> str:
        return f"Folded{self._key()!r}"

    def _key(self) -> tuple[object, ...]:
        return (
            self.original,
            self.text,
            self.seg_folded_start,
            self.seg_orig_start,
            self.seg_folded_len,
            self.seg_orig_len,
        )

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
        return self._map([end - length + 1 for end in ends], length)

    def occurrences(self, term: str) -> list[tuple[int, int]]:
        """Distinct original spans of every occurrence of the folded ``term``, overlapping ones included.

        Sorted by start: the same spans as :meth:`spans` of the automaton's matches of ``term``.
        """
        text = self.text
        find = text.find
        length = len(term)
        starts = []
        start = find(term)
        while start >= 0:
            starts.append(start)
            start = find(term, start + 1)
        if not self.seg_folded_start:
            return [(start, start + length) for start in starts]
        return self._map(starts, length)

    def _map(self, starts: list[int], length: int) -> list[tuple[int, int]]:
        # Per folded index x, j is the last segment starting at or before it: inside the segment x maps
        # to the segment's original span, after it x moves by the segment's accumulated shift.
        if self._segments is None:
            f_ends = tuple(f + n for f, n in zip(self.seg_folded_start, self.seg_folded_len, strict=True))
            o_ends = tuple(o + n for o, n in zip(self.seg_orig_start, self.seg_orig_len, strict=True))
            shifts = tuple(o - f for o, f in zip(o_ends, f_ends, strict=True))
            self._segments = (self.seg_folded_start, f_ends, self.seg_orig_start, o_ends, shifts)
        f_starts, f_ends, o_starts, o_ends, shifts = self._segments
        bisect_right = bisect.bisect_right
        out: list[tuple[int, int]] = []
        for x in starts:
            last = x + length - 1
            k = bisect_right(f_starts, last) - 1  # the last segment starting at or before the last character
            if k < 0:
                span = (x, last + 1)
            elif x >= f_ends[k]:  # the whole match lies after segment k and before the next one
                span = (x + shifts[k], last + shifts[k] + 1)
            else:
                j = bisect_right(f_starts, x, 0, k + 1) - 1
                span = (
                    x if j < 0 else o_starts[j] if x < f_ends[j] else x + shifts[j],
                    o_ends[k] if last < f_ends[k] else last + shifts[k] + 1,
                )
            # Matches inside one expansion (... in the six dots of ……) map to the same original span:
            # keep one. The map is monotone, so equal spans are neighbours.
            if not out or out[-1] != span:
                out.append(span)
        return out

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


def fold_reference(text: str) -> Folded:
    """The definition of :func:`fold` (and its path for text with combining marks, jamo and the like)."""
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


# Noncharacters that the fast tables put in place of a character that folds to several (its folding is
# in _Fast.expansions), of one left to fold_reference (combining marks, jamo, lone surrogates, these
# three themselves), and (16-bit table only) of a character outside the BMP.
_EXPANDS = "\ufdd0"
_UNSAFE = "\ufdd1"
_WIDE = "\ufdd2"
_U16 = np.dtype("<u2")
_U32 = np.dtype("<u4")
# Below this length a set look-up per character is cheaper than numpy's fixed cost per call.
_SHORT = 96


@dataclass(frozen=True)
class _Fast:
    narrow: npt.NDArray[np.uint16]  # UTF-16 code unit -> folded code point (BMP text, the usual case)
    wide: npt.NDArray[np.uint32]  # code point -> folded code point
    expansions: dict[str, str]
    not_quiet: frozenset[str]  # characters that fold to something else or are left to fold_reference


def _unstable_code_points() -> Iterator[int]:
    begin = 0
    for first, last in (*_STABLE_BLOCKS, (0x110000, 0x110000)):
        yield from range(begin, first)
        begin = last + 1


def _composition_seconds() -> set[str]:
    # Characters that can compose with the character before them (NFC quick check "maybe"): the
    # second halves of canonical pairs, and Hangul jamo (composed by algorithm, not by table).
    ranges = ((0x1100, 0x11FF), (0xA960, 0xA97F), (0xD7B0, 0xD7FF))
    seconds = {chr(cp) for lo, hi in ranges for cp in range(lo, hi + 1)}
    for cp in _unstable_code_points():
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                seconds.add(chr(int(parts[1], 16)))
    return seconds


def _build_wide(changing: dict[int, str]) -> tuple[npt.NDArray[np.uint32], dict[str, str]]:
    """The code point table of the fast path and the foldings of the characters that fold to several.

    Exact for text whose every character is "plain": a text of plain characters is in NFC, and so is its
    per-character folding: no character of it composes with a neighbour or is reordered, so fold_reference
    takes its per-character path and folds each character by itself, which one look-up per character
    reproduces.
    """
    seconds = _composition_seconds()

    def plain(char: str) -> bool:
        decomposed = unicodedata.normalize("NFD", char)
        return (
            char not in seconds
            and unicodedata.combining(char) == 0
            and unicodedata.normalize("NFC", char) == char
            and unicodedata.combining(decomposed[0]) == 0
            and decomposed[0] not in seconds
        )

    wide = np.arange(0x110000, dtype=np.uint32)
    wide[0xD800:0xE000] = ord(_UNSAFE)  # lone surrogates: rare, and the reference is the definition
    for cp in _unstable_code_points():
        if not plain(chr(cp)):
            wide[cp] = ord(_UNSAFE)
    wide[[ord(_EXPANDS), ord(_UNSAFE), ord(_WIDE)]] = ord(_UNSAFE)
    expansions: dict[str, str] = {}
    for cp, folded in changing.items():
        if wide[cp] == ord(_UNSAFE):
            continue
        if not folded or not all(plain(char) for char in folded):
            wide[cp] = ord(_UNSAFE)
        elif len(folded) == 1:
            wide[cp] = ord(folded)
        else:
            wide[cp] = ord(_EXPANDS)
            expansions[chr(cp)] = folded
    return wide, expansions


@dataclass(frozen=True)
class _Source:
    """What the tables are made from: the characters that fold, and the fast table where it is not identity."""

    changing: dict[int, str]
    points: npt.NDArray[np.uint32]  # code points the fast table maps elsewhere, ascending
    values: npt.NDArray[np.uint32]  # what it maps them to
    expansions: dict[str, str]


# Building the tables walks every code point outside the stable blocks through unicodedata (~0.3 s CPU, in
# every crawl process and at every start of the service). Processes keep them in the data dir
# (service.rules.config.keep_folding_tables) as the bytes of ``tables_blob``, under ``kept_tables_name``: a
# digest of the Unicode data and of this module's source, so a new Python or a changed rule builds anew.
_given: list[_Source] = []


def kept_tables_name() -> str:
    """The file name the tables of this Python and this folding rule are kept under."""
    digest = hashlib.sha256(f"folding-1\0{unicodedata.unidata_version}\0{sys.version}\0".encode())
    digest.update(Path(__file__).read_bytes())
    return f"folding.{digest.hexdigest()}.marshal"


def tables_blob() -> bytes:
    """The tables' source as bytes (built now if this process has none yet)."""
    source = _kept_or_built()
    return marshal.dumps((source.changing, source.points.tobytes(), source.values.tobytes(), source.expansions))


def use_tables_blob(blob: bytes) -> bool:
    """Use tables kept by ``tables_blob`` (before the first fold of this process); False if unreadable."""
    try:
        changing, points, values, expansions = marshal.loads(blob)  # noqa: S302 - from the service's data dir
        kept = _Source(changing, np.frombuffer(points, _U32).copy(), np.frombuffer(values, _U32).copy(), expansions)
    except (EOFError, ValueError, TypeError):
        return False
    _given[:] = [kept]
    return True


@cache
def _kept_or_built() -> _Source:
    if _given:
        return _given[0]
    changing = _changing_points()
    wide, expansions = _build_wide(changing)
    points = np.flatnonzero(wide != np.arange(0x110000, dtype=np.uint32)).astype(np.uint32)
    return _Source(changing, points, wide[points], expansions)


@cache
def _fast() -> _Fast:
    """Tables of the fast path (see ``_build_wide``), from the kept or built source."""
    source = _kept_or_built()
    wide = np.arange(0x110000, dtype=np.uint32)
    wide[source.points] = source.values
    narrow = wide[:0x10000].copy()
    narrow[narrow > 0xFFFF] = ord(_WIDE)  # a BMP character folding outside it: take the wide table
    narrow[0xD800:0xE000] = ord(_WIDE)  # surrogate pairs (and lone surrogates) in UTF-16
    not_quiet = frozenset(map(chr, source.points.tolist()))
    return _Fast(narrow.astype(np.uint16), wide, source.expansions, not_quiet)


def fold(text: str) -> Folded:
    """Fold ``text`` for matching; see the module docstring for what folding means.

    Equal to :func:`fold_reference` (a property test holds it to that) in a few C-speed passes over the
    text, one table look-up per character; Python work only per character that folds to several.
    """
    if text.isascii():
        return Folded(text, text.lower())  # NFKC keeps ASCII; casefold is lower() there
    fast = _fast()
    if len(text) < _SHORT and fast.not_quiet.isdisjoint(text):
        return Folded(text, text)
    units = np.frombuffer(text.encode("utf-16-le", "surrogatepass"), _U16)
    folded: str = codecs.utf_16_le_decode(fast.narrow.take(units).tobytes())[0]
    if _WIDE in folded:
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), _U32)
        folded = codecs.utf_32_le_decode(fast.wide.take(points).tobytes())[0]
    if _UNSAFE in folded:
        return fold_reference(text)
    if _EXPANDS not in folded:
        return Folded(text, folded)
    return _expanded(text, folded)


def _expanded(text: str, folded: str) -> Folded:
    """The folding of ``text`` from its table look-up ``folded``, where _EXPANDS marks each character that
    folds to several (one to one with ``text`` otherwise)."""
    fast = _fast()
    parts = folded.split(_EXPANDS)
    expansions = fast.expansions
    out = [parts[0]]
    seg: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    pos = len(parts[0])  # original offset of the next expanding character
    shift = 0
    for part in parts[1:]:
        expansion = expansions[text[pos]]
        out += (expansion, part)
        seg[0].append(pos + shift)
        seg[1].append(pos)
        seg[2].append(len(expansion))
        seg[3].append(1)
        shift += len(expansion) - 1
        pos += 1 + len(part)
    return Folded(text, "".join(out), *(tuple(lst) for lst in seg))


def fold_term(text: str) -> str:
    """The folded form of a rule term (what the automaton looks for)."""
    return fold(text).text
