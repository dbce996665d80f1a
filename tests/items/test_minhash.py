"""Repost keys computed with numpy are exactly datasketch's, so items stored by earlier releases still match.

Stores hold the band keys of every item written since repost detection existed; a repost crawled today
must share bands with them. The numpy computation (service.items.minhash) replaced one Python call per
shingle; these tests hold it to datasketch's MinHash and zlib's CRC-32 on any text.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zlib

import numpy as np
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from service.items import duplicates, minhash
from service.store.base import to_signed64

# Texts as pages give them: CJK with full-width forms, ASCII, accents and combining marks, emoji and other
# characters beyond the BMP (4-byte UTF-8), and anything else of Unicode except lone surrogates.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("投诉化工厂异味１２３，。、：ab9 \n\té\u0301Ωß\u07ff\u0800\uffff😀\U00010000\U0010ffff"),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=300,
)


def _strings(text: str) -> set[str]:
    """The shingles as datasketch was given them (the implementation before numpy)."""
    if len(text) <= minhash.SHINGLE:
        return {text} if text else set()
    return {text[i : i + minhash.SHINGLE] for i in range(len(text) - minhash.SHINGLE + 1)}


def _datasketch_keys(strings: set[str], num_perm: int, seed: int, bands: int, rows: int, tag: bytes) -> list[int]:
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=zlib.crc32, scheme="affine32")
    m.update_batch([s.encode("utf-8") for s in strings])
    keys = []
    for i in range(bands):
        chunk = m.hashvalues[i * rows : (i + 1) * rows].tobytes()
        keys.append(to_signed64(int.from_bytes(hashlib.blake2b(tag + bytes([i]) + chunk, digest_size=8).digest())))
    return keys


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_shingles_and_their_hashes_are_the_texts_own(text: str) -> None:
    got = minhash.shingles(text)
    want = _strings(text)
    assert len(got) == len(want)
    assert sorted(got.hashes.tolist()) == sorted(zlib.crc32(s.encode("utf-8")) for s in want)
    assert list(got.ids) == sorted(got.ids.tolist())


@settings(max_examples=200, deadline=None)
@given(TEXT, TEXT)
def test_shared_shingles_count_like_sets(a: str, b: str) -> None:
    assert minhash.shingles(a).shared(minhash.shingles(b)) == len(_strings(a) & _strings(b))
    union = minhash.shingles(a) | minhash.shingles(b)
    assert len(union) == len(_strings(a) | _strings(b))
    assert sorted(union.hashes.tolist()) == sorted(zlib.crc32(s.encode()) for s in _strings(a) | _strings(b))


@settings(max_examples=200, deadline=None)
@given(TEXT.filter(bool))
def test_band_keys_are_datasketchs(text: str) -> None:
    sh = minhash.shingles(text)
    for num_perm, seed, bands, rows, tag in ((60, 1, 20, 3, b"t"), (16, 2, 8, 2, b"l")):
        got = minhash.band_keys(minhash.minhash(sh.hashes, num_perm, seed), bands, rows, tag)
        assert got == _datasketch_keys(_strings(text), num_perm, seed, bands, rows, tag)


def test_an_items_signature_is_the_one_stored_by_earlier_releases() -> None:
    title, content = "【转】化工厂夜间排放异味", "河西区幸福路化工厂每天夜里排放刺鼻气体，居民反映多次无人处理。" * 3
    c = duplicates.comparable(title, content)
    text_strings = _strings(c.title) | _strings(c.body) if c.title else _strings(c.body)
    want = _datasketch_keys(text_strings, duplicates.NUM_PERM, 1, duplicates.BANDS, duplicates.ROWS, b"t")
    want += _datasketch_keys(
        _strings(c.body[: duplicates.LEAD]), duplicates.LEAD_PERM, 2, duplicates.LEAD_BANDS, duplicates.LEAD_ROWS, b"l"
    )
    assert duplicates.signature(c) == want


@settings(max_examples=150, deadline=None)
@given(TEXT, TEXT)
def test_signatures_of_any_title_and_body_are_datasketchs(title: str, content: str) -> None:
    """The lead's keys come from the body's own shingle hashes (not hashed twice): still datasketch's keys."""
    c = duplicates.comparable(title, content)
    if not c.shingles:
        assert duplicates.signature(c) == []
        return
    text_strings = _strings(c.title) | _strings(c.body) if c.title else _strings(c.body)
    want = _datasketch_keys(text_strings, duplicates.NUM_PERM, 1, duplicates.BANDS, duplicates.ROWS, b"t")
    lead = c.body[: duplicates.LEAD]
    if len(lead) >= duplicates.LEAD // 2:
        args = (duplicates.LEAD_PERM, 2, duplicates.LEAD_BANDS, duplicates.LEAD_ROWS, b"l")
        want += _datasketch_keys(_strings(lead), *args)
    assert duplicates.signature(c) == want


def test_the_crawl_process_does_not_load_scipy() -> None:
    """datasketch imports SciPy (about a second of CPU per crawl process); crawls only need the keys."""
    code = (
        "import sys\n"
        "import crawlers.crawl_process, crawlers.pipelines, crawlers.spiders, service.store.sqlite\n"
        "print(sorted(m for m in ('scipy', 'datasketch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_empty_text_has_no_keys() -> None:
    assert len(minhash.shingles("")) == 0
    assert duplicates.signature(duplicates.comparable("", "")) == []
    assert np.array_equal(minhash.minhash(minhash.EMPTY.hashes, 4, 1), np.full(4, 0xFFFFFFFF, dtype=np.uint32))


@settings(max_examples=200, deadline=None)
@given(TEXT, TEXT, TEXT, TEXT)
def test_comparison_counts_shared_shingles_like_sets(title_a: str, body_a: str, title_b: str, body_b: str) -> None:
    """compare counts the bodies' shared shingles once and adds the headlines' parts: as sets would count."""
    a, b = duplicates.comparable(title_a, body_a), duplicates.comparable(title_b, body_b)
    if not a.shingles or not b.shingles:
        return
    whole_a = _strings(a.title) | _strings(a.body) if a.title else _strings(a.body)
    whole_b = _strings(b.title) | _strings(b.body) if b.title else _strings(b.body)
    body_a, body_b = _strings(a.body), _strings(b.body)
    verdict = duplicates.compare(a, b)
    assert verdict.jaccard == len(whole_a & whole_b) / len(whole_a | whole_b)
    small = min(body_a, body_b, key=len) if len(body_a) != len(body_b) else body_a
    assert verdict.containment == (len(body_a & body_b) / len(small) if small else 0.0)


def test_shared_shingles_of_a_headline_and_of_two_bodies() -> None:
    """A few shingles against many are looked up one by one, two bodies merged: the same counts."""
    body = "河西区幸福路化工厂每天夜里排放刺鼻气体，居民反映多次无人处理。" * 4
    for a, b in (("化工厂每天", body), (body, "化工厂每天"), (body, body[10:] + "另一段"), ("", body), (body, body)):
        assert minhash.shingles(a).shared(minhash.shingles(b)) == len(_strings(a) & _strings(b))
        union = minhash.shingles(a) | minhash.shingles(b)
        assert sorted(union.ids.tolist()) == union.ids.tolist()
        assert len(union) == len(_strings(a) | _strings(b))
        assert sorted(union.hashes.tolist()) == sorted(zlib.crc32(s.encode()) for s in _strings(a) | _strings(b))
