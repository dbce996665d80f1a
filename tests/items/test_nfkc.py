"""The fast NFKC of item texts is unicodedata's NFKC on any text (repost keys depend on it bit for bit)."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from service.items.nfkc import nfkc

# Full-width forms, expansions (…… ℃ ㎡), characters that compose with what precedes them (combining
# marks, Hangul jamo, half-width katakana voicing marks), the noncharacter the look-up uses as a marker,
# characters beyond the BMP, lone surrogates, and anything else.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("投诉化工厂异味１２３，。、：ab9 \n\t…℃㎡①²ﬁé\u0301e\u0301ｶﾞ"),
        st.sampled_from("\u1100\u1161\u11a8가\uffff😀\U0002f800"),
        st.characters(),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_nfkc_is_unicodedatas(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


def test_every_bmp_character_in_context_normalises_like_unicodedata() -> None:
    for cp in range(0x10000):
        char = chr(cp)
        for text in (char, f"中{char}，", f"e{char}\u0301", char * 2):
            assert nfkc(text) == unicodedata.normalize("NFKC", text), hex(cp)
