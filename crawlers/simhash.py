"""64-bit SimHash of Chinese text over character shingles, for near-duplicate grouping."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter

from service.store.base import to_signed64

# Punctuation and spacing differ between reposts of the same text; they are not features.
_NOISE = re.compile(r"[\W_]+", re.UNICODE)


def features(text: str, width: int = 2) -> Counter[str]:
    """Character shingles of the text without punctuation or spaces (bigrams by default)."""
    clean = _NOISE.sub("", unicodedata.normalize("NFKC", text).lower())
    if len(clean) <= width:
        return Counter([clean]) if clean else Counter()
    return Counter(clean[i : i + width] for i in range(len(clean) - width + 1))


def simhash(text: str) -> int | None:
    """Signed 64-bit SimHash (fits a database long); None for text without features."""
    counts = features(text)
    if not counts:
        return None
    weights = [0] * 64
    for feature, weight in counts.items():
        h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
        for bit in range(64):
            weights[bit] += weight if h >> bit & 1 else -weight
    value = 0
    for bit, w in enumerate(weights):
        if w > 0:
            value |= 1 << bit
    return to_signed64(value)
