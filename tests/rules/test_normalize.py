"""Folding for matching maps every folded character back to the original text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.folding import fold, fold_term


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
