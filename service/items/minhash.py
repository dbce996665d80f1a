"""Character shingles and MinHash LSH band keys with numpy: a few array operations per text instead of
Python calls per shingle.

The band keys are bit for bit those of ``datasketch.MinHash`` (affine32 scheme, the CRC-32 of each
shingle's UTF-8 bytes as its hash, the permutations datasketch draws from the same seed), cut into bands
as before: stores hold keys written by earlier releases, and a repost must share bands with them
(tests/items/test_minhash.py compares with datasketch itself). Computing them here keeps datasketch and
the SciPy it imports (about a second of CPU) out of every crawl process.

A shingle is an unsigned 64-bit id: its three code points, 21 bits each. A text shorter than one shingle
is its own shingle; the missing places hold 0x1FFFFF, above every code point, so such an id never equals
a real shingle's.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SHINGLE = 3  # characters per shingle: bigrams make unrelated Chinese texts on one topic look alike
_BITS = np.uint64(21)
_NONE = 0x1FFFFF  # no character at this place of a short text's shingle
_BYTE = np.uint32(0xFF)


@dataclass(frozen=True)
class Shingles:
    """A text's distinct shingles: sorted ids and, aligned with them, the CRC-32 of each one's UTF-8 bytes."""

    ids: np.ndarray
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def __or__(self, other: Shingles) -> Shingles:
        small, large = (self, other) if len(self) <= len(other) else (other, self)
        if len(small) * 8 < len(large):
            # A headline's few shingles into a body's: inserted where they belong, no sort of the whole.
            extra = _missing(small.ids, large.ids)
            ids = small.ids[extra]
            # Where each new id lands in the result: its place among the large side's ids, moved on by the new
            # ids before it (np.insert does the same with several times the overhead).
            landing = large.ids.searchsorted(ids) + np.arange(len(ids))
            kept = np.ones(len(large) + len(ids), dtype=bool)
            kept[landing] = False
            merged_ids = np.empty(len(kept), dtype=large.ids.dtype)
            merged_hashes = np.empty(len(kept), dtype=large.hashes.dtype)
            merged_ids[landing], merged_ids[kept] = ids, large.ids
            merged_hashes[landing], merged_hashes[kept] = small.hashes[extra], large.hashes
            return Shingles(merged_ids, merged_hashes)
        ids, first = _distinct(np.concatenate([self.ids, other.ids]))
        return Shingles(ids, np.concatenate([self.hashes, other.hashes])[first])

    def shared(self, other: Shingles) -> int:
        """How many shingles the two have in common."""
        return shared_ids(self.ids, other.ids)


def shared_ids(a: np.ndarray, b: np.ndarray) -> int:
    """How many values two sorted arrays of distinct shingle ids have in common."""
    if not len(a) or not len(b):
        return 0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if len(small) * 8 < len(large):
        # A few ids (a headline's) against many: a binary search each.
        where = large.searchsorted(small)
        where[where == len(large)] = 0
        return int(np.count_nonzero(large[where] == small))
    # Two sorted runs: a stable sort merges them in one pass (timsort), a shared id then sits twice in a row.
    both = np.concatenate([small, large])
    both.sort(kind="stable")
    return int(np.count_nonzero(both[1:] == both[:-1]))


def ids_missing_from(ids: np.ndarray, others: np.ndarray) -> np.ndarray:
    """The ids (sorted, distinct) that the sorted array ``others`` does not hold."""
    return ids[_missing(ids, others)]


def _missing(ids: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of ``ids`` the sorted array ``others`` does not hold (a mask)."""
    if not len(others) or not len(ids):
        return np.ones(len(ids), dtype=bool)
    where = others.searchsorted(ids)
    where[where == len(others)] = 0
    return others[where] != ids


def _distinct(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct ids and, for each, a position where it occurs.

    Not necessarily the first position (``np.unique(return_index=True)`` pays a stable sort for that, three
    times the cost): every occurrence of an id is the same shingle, so any of them has the same hash.
    """
    order = ids.argsort()
    ordered = ids[order]
    keep = np.empty(len(ordered), dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep], order[keep]


EMPTY = Shingles(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint32))


def code_points(text: str) -> np.ndarray:
    """The text's code points (lone surrogates, which broken pages can leave, kept as they are)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)


def shingles(text: str) -> Shingles:
    """The distinct shingles of ``text`` (see the module docstring); none for an empty text."""
    return shingles_and_lead(text, 0)[0]


def shingles_and_lead(text: str, lead: int) -> tuple[Shingles, np.ndarray]:
    """The distinct shingles of ``text`` and the hashes of the shingles of its first ``lead`` characters.

    The lead's hashes are those of ``shingles(text[:lead]).hashes`` as a multiset (repeats kept, any order):
    what a MinHash of the lead needs, taken from the text's own hashes instead of hashing the lead again.
    """
    if not text:
        return EMPTY, EMPTY.hashes
    if len(text) < _SHORT:
        few = _few_shingles(text)
        return few, (few.hashes if len(text) <= lead else shingles(text[:lead]).hashes)
    cps = code_points(text)
    ids = (cps[:-2] << (_BITS + _BITS)) | (cps[1:-1] << _BITS) | cps[2:]
    unique, first = _distinct(ids)
    crcs = _shingle_crcs(cps)
    if lead >= len(text):
        lead_hashes = crcs
    elif lead > SHINGLE:
        # A copy: a view would keep the whole text's hashes alive in every remembered comparable.
        lead_hashes = crcs[: lead - SHINGLE + 1].copy()
    else:
        lead_hashes = shingles(text[:lead]).hashes
    return Shingles(unique, crcs[first]), lead_hashes


# Below this many characters (short headlines) array set-up costs more than hashing each shingle on its own.
_SHORT = 24


def _few_shingles(text: str) -> Shingles:
    """The shingles of a short text, one at a time (same ids and hashes as the array path)."""
    if len(text) <= SHINGLE:
        pieces = [text]
        padded = [*map(ord, text), _NONE, _NONE][:SHINGLE]
        keys = [(padded[0] << 42) | (padded[1] << 21) | padded[2]]
    else:
        pieces = [text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1)]
        keys = [(ord(p[0]) << 42) | (ord(p[1]) << 21) | ord(p[2]) for p in pieces]
    unique = dict(sorted(zip(keys, pieces, strict=True)))
    hashes = [zlib.crc32(p.encode("utf-8", "surrogatepass")) for p in unique.values()]
    return Shingles(np.array(list(unique), dtype=np.uint64), np.array(hashes, dtype=np.uint32))


# -- the CRC-32 of every shingle at once -------------------------------------------------------------
# CRC-32 is affine over GF(2): crc(m) = K[len(m)] ^ R(m), where R is the register fed with m from zero
# (no inversions) and K[n] the CRC of n zero bytes. R of a concatenation a + b is R(a) moved on by
# len(b) zero bytes, xor R(b); moving on by zero bytes is linear too, so four table lookups (one per byte
# of the register) do it. R and the UTF-8 length of every code point of the BMP are tabulated once.

_BMP = 0x10000
_SIXTEEN = np.uint64(16)


@dataclass(frozen=True)
class _CrcTables:
    byte: np.ndarray  # zlib's CRC-32 table, one entry per byte value
    shift: np.ndarray  # [(n * 4 + k) * 256 + v]: a register holding only v in its byte k, moved on n zero bytes
    zeros: np.ndarray  # [n]: the CRC of n zero bytes
    registers: np.ndarray  # [code point]: R of its UTF-8 bytes, for the BMP
    lengths: np.ndarray  # [code point]: the number of its UTF-8 bytes, for the BMP
    # [(n << 16) | code point], BMP: R of its bytes moved on n zero bytes (n up to the 6 bytes two BMP
    # characters take); ``leading`` also holds the CRC of as many zero bytes as the shingle has, so the CRC of
    # a shingle of BMP characters is three look-ups: leading[n1 + n2, c0] ^ moved[n2, c1] ^ registers[c2].
    moved: np.ndarray
    leading: np.ndarray


@lru_cache(maxsize=1)
def _crc_tables() -> _CrcTables:
    byte = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        byte = (byte >> np.uint32(1)) ^ ((byte & np.uint32(1)) * np.uint32(0xEDB88320))
    shift = np.zeros((13, 4, 256), dtype=np.uint32)  # a shingle is at most 12 bytes
    for k in range(4):
        register = np.arange(256, dtype=np.uint32) << np.uint32(8 * k)
        for n in range(13):
            shift[n, k] = register
            register = byte[register & _BYTE] ^ (register >> np.uint32(8))
    flat = shift.reshape(-1)
    zeros = _shift(flat, np.full(13, 0xFFFFFFFF, dtype=np.uint32), np.arange(13)) ^ np.uint32(0xFFFFFFFF)
    registers, lengths = _utf8_registers(byte, np.arange(_BMP, dtype=np.uint32))
    steps = np.arange(_MOST_MOVED + 1)
    moved = np.stack([_shift(flat, registers, np.full(_BMP, n)) for n in steps])
    leading = moved ^ zeros[lengths[np.newaxis, :] + steps[:, np.newaxis]]
    return _CrcTables(byte, flat, zeros, registers, lengths, moved.reshape(-1), leading.reshape(-1))


_MOST_MOVED = 6  # bytes of the two BMP characters after a shingle's first


def _shift(flat: np.ndarray, register: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Each register moved on by its own number of zero bytes."""
    base = n.astype(np.intp) * 1024
    out = flat[base + (register & _BYTE)]
    for k in (1, 2, 3):
        out ^= flat[base + (256 * k) + ((register >> np.uint32(8 * k)) & _BYTE)]
    return out


def _utf8_registers(byte_table: np.ndarray, cp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R of each code point's UTF-8 bytes (surrogates as surrogatepass writes them) and their number."""
    cp = cp.astype(np.uint32)
    count = np.where(cp < 0x80, 1, np.where(cp < 0x800, 2, np.where(cp < 0x10000, 3, 4))).astype(np.uint32)
    marker = np.array([0, 0, 0xC0, 0xE0, 0xF0], dtype=np.uint32)[count]
    register = np.zeros(len(cp), dtype=np.uint32)
    for position in range(4):
        # Byte ``position`` of a sequence of ``count`` bytes: the lead byte holds the top bits after its
        # marker; each continuation byte 0x80 and six bits.
        bits = np.uint32(6) * np.maximum(count.astype(np.int64) - 1 - position, 0).astype(np.uint32)
        data = marker | (cp >> bits) if position == 0 else np.uint32(0x80) | ((cp >> bits) & np.uint32(0x3F))
        moved = byte_table[(register ^ data) & _BYTE] ^ (register >> np.uint32(8))
        register = np.where(count > position, moved, register)
    return register, count


def _shingle_crcs(cps: np.ndarray) -> np.ndarray:
    """``zlib.crc32`` of the UTF-8 bytes of the shingle starting at each position (a text over one shingle)."""
    tables = _crc_tables()
    if int(cps.max()) < _BMP:
        n = tables.lengths[cps].astype(np.uint64)
        n3 = n[2:]
        # Three look-ups per shingle (see _CrcTables); the code points index the tables as they are.
        head = tables.leading[((n[1:-1] + n3) << _SIXTEEN) | cps[:-2]]
        return head ^ tables.moved[(n3 << _SIXTEEN) | cps[1:-1]] ^ tables.registers[cps[2:]]
    # Characters beyond the BMP (emoji, rare ideographs): computed for this text.
    r, n = _utf8_registers(tables.byte, cps)
    n2, n3 = n[1:-1], n[2:]
    inner = _shift(tables.shift, r[:-2], n2 + n3) ^ _shift(tables.shift, r[1:-1], n3)
    return tables.zeros[n[:-2] + n2 + n3] ^ inner ^ r[2:]


# -- MinHash and bands ---------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations for ``seed``: odd multipliers ``a`` and offsets ``b`` (uint32)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(hv: np.ndarray) -> np.ndarray:
    # MurmurHash3's finalizer, which datasketch applies to each input hash before the permutations.
    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    return hv ^ (hv >> np.uint32(16))


def minhash(hashes: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """The MinHash values (uint32) of a set given by its members' CRC-32 hashes."""
    a, b = _columns(num_perm, seed)
    if not len(hashes):
        return np.full(num_perm, 0xFFFFFFFF, dtype=np.uint32)
    # One row per permutation: each row's minimum is a reduction over contiguous memory. Computed in place in
    # one array: ``(a * h + b)`` made two temporaries of a row per permutation, 2.7 times the time.
    mixed = _fmix32(hashes.astype(np.uint32, copy=False))
    values = np.empty((len(a), len(mixed)), dtype=np.uint32)
    np.multiply(a, mixed, out=values)
    values += b
    return values.min(axis=1)


@lru_cache(maxsize=4)
def _columns(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = permutations(num_perm, seed)
    return a.reshape(-1, 1), b.reshape(-1, 1)


def band_keys(values: np.ndarray, bands: int, rows: int, tag: bytes) -> list[int]:
    """Signed 64-bit keys of ``bands`` bands of ``rows`` MinHash values each."""
    raw = values.astype(np.uint32).tobytes()  # 4 bytes a value, as datasketch keeps affine32 values
    width = rows * 4
    blake2b = hashlib.blake2b
    digests = b"".join(
        [
            blake2b(prefix + raw[start : start + width], digest_size=8).digest()
            for prefix, start in zip(_band_prefixes(tag, bands), range(0, bands * width, width), strict=True)
        ]
    )
    # Each digest read as a big-endian signed 64-bit number (to_signed64 of its unsigned value).
    keys: list[int] = np.frombuffer(digests, dtype=">i8").tolist()
    return keys


@lru_cache(maxsize=8)
def _band_prefixes(tag: bytes, bands: int) -> tuple[bytes, ...]:
    """What each band's hash starts with: the tag and the band's number."""
    return tuple(tag + bytes((i,)) for i in range(bands))
