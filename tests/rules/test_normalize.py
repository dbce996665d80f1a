"""Folding for matching maps every folded character back to the original text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import folding
from service.folding import _tables, fold, fold_reference, fold_term
from service.rules.config import keep_folding_tables
from service.rules.matcher import fold_many


def test_width_and_case_fold_together():
    assert fold_term("ＡＢＣ１２３Ｘｙ") == "abc123xy"
    assert fold_term("Straße") == "strasse"
    assert fold("化工厂，排污！").text == "化工厂,排污!"


def test_spans_map_back_over_length_changes():
    original = "ＡＢ……㎡①化工"
    folded = fold(original)
    assert folded.text == "ab......m21化工"
    start = folded.text.index("化工")
    assert folded.span(start, start + 2) == (6, 8)
    dots = folded.text.index("...")
    assert folded.span(dots + 1, dots + 4) == (2, 4)  # a match inside the expansions covers both …
    m2 = folded.text.index("m2")
    assert original[slice(*folded.span(m2, m2 + 2))] == "㎡"


def test_combining_marks_fold_with_their_base():
    folded = fold("cafe\u0301 CAFÉ")
    assert folded.text == "café café"
    assert folded.span(0, 4) == (0, 5)
    assert folded.span(5, 9) == (6, 10)


@given(st.lists(st.sampled_from([*"aA…㎡①ß化ｂé", "e\u0301", "\u0301", "ﬁ"]), max_size=20).map("".join))
def test_every_folded_char_maps_to_an_original_char_that_folds_to_contain_it(text):
    folded = fold(text)
    for i, char in enumerate(folded.text):
        start, end = folded.span(i, i + 1)
        assert 0 <= start < end <= len(text)
        assert char in fold(text[start:end]).text


# The fast fold (one table look-up per character) must equal the reference fold (NFKC + casefold per
# character or cluster) on anything: full-width forms, compatibility characters that expand, case pairs,
# combining marks, characters that compose with their neighbour (jamo, Tamil and Kannada vowel signs),
# singletons (Å ohm), astral letters and emoji, lone surrogates and the noncharacters the tables use.
TRICKY = [
    *"ＡＺａｚ０９，。：；！？（）｛｝＂＇\u3000…‥㎡①⑩℃ﬁﬃßẞİıΣσςǅ㈱﹏ﻻ＄￥",
    *"\u212b\u2126\ufa11\u0301\u0327\u0308\u1100\u1161\u11a8\u3131\u314f가각\u0bc6\u0bbe\u0cbf\u0cd5\u0f73",
    *"\U0001d400\U0001d7ce\U0001f600\U00010400\U0001e900\ud800\udc00\ufdd0\ufdd1\ufdd2",
    "e\u0301",
    "ß\u0301",
    "℃\u0327",
]
CJK = [*"化工厂排污噪音市民反映的问题", "青川镇东风村"]
piece = st.one_of(
    st.sampled_from(TRICKY),
    st.sampled_from(CJK),
    st.characters(codec=None, exclude_categories=()),
    st.text(max_size=3),
)
long_text = st.builds(
    lambda head, filler, tail: head + filler + tail,
    st.lists(piece, max_size=30).map("".join),
    st.sampled_from(["", "市民反映" * 30, "Ａ" * 100]),
    st.lists(piece, max_size=30).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(piece, max_size=40).map("".join), long_text))
def test_fast_fold_equals_the_reference_fold(text):
    fast = fold(text)
    reference = fold_reference(text)
    assert fast == reference
    for i in range(len(fast.text)):
        assert fast.span(i, i + 1) == reference.span(i, i + 1)


def test_every_changing_character_folds_as_the_reference_in_long_text():
    # Every character that folding changes, in runs long enough for the table path, between Chinese
    # text and ASCII capitals: each run must fold exactly as the reference folds it.
    changing = [chr(cp) for cp in sorted(_tables().changing)]
    for start in range(0, len(changing), 150):
        text = "市民反映" + "A中".join(changing[start : start + 150]) + "问题"
        assert fold(text) == fold_reference(text), changing[start]


def test_a_later_process_reads_the_folding_tables_kept_in_the_data_dir(tmp_path, monkeypatch):
    """Building the tables cost every crawl process and every start ~0.3 s CPU; the first process keeps them
    in the data dir and the next reads them, folding exactly as before (a changed folding.py or Python
    gives another file name)."""
    caches = (folding._kept_or_built, folding._tables, folding._fast)
    built = fold("ＡＢＣ……㎡ Straße ｶ①")
    try:
        for cache in caches:
            cache.cache_clear()
        keep_folding_tables(tmp_path)
        assert fold("ＡＢＣ……㎡ Straße ｶ①") == built
        assert [p.name for p in tmp_path.glob("folding.*.marshal")] == [folding.kept_tables_name()]
        for cache in caches:
            cache.cache_clear()
        folding._given.clear()
        monkeypatch.setattr(folding, "_changing_points", lambda: pytest.fail("the tables were built again"))
        keep_folding_tables(tmp_path)
        assert fold("ＡＢＣ……㎡ Straße ｶ①") == built
        assert fold_reference("cafe\u0301 ＣＡＦÉ") == fold("cafe\u0301 ＣＡＦÉ")
        assert set(folding._fast().not_quiet) >= {"Ａ", "…", "㎡", "ß", "①"}
    finally:
        folding._given.clear()
        for cache in caches:
            cache.cache_clear()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.lists(piece, max_size=20).map("".join), long_text), max_size=6))
def test_a_page_of_texts_folded_at_once_folds_as_each_text_alone(texts):
    # Rule trials fold a page of items in one pass: expansions (…), wide characters, combining marks and
    # capitals must come out as fold() of each text, offsets included.
    assert fold_many(texts) == [fold(text) for text in texts]


def test_a_page_with_expansions_or_characters_beyond_the_fast_path_folds_as_each_text_alone():
    for page in (["市民反映……", "ＡＢ问题", "Hello"], ["e\u0301", "问题"], ["𠀀Ａ", "㎡"]):
        assert fold_many(page) == [fold(text) for text in page]
