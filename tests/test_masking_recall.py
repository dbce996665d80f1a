"""The masker's recall and false positives on a generated corpus (see tests/masking_corpus.py).

Property-based: hypothesis writes personal numbers in the ways people write them (spaces, dots, hyphens,
full-width digits, +86/0 prefixes, qq/wx/Tel/电话/微信 labels, split ID numbers, Luhn-valid cards, two
mobiles run together, e-mail) inside Chinese text; every one must come out masked. Ordinary numbers
(dates, amounts, work-order numbers, counts) must stay as they are, measured as a rate on a fixed sample.
benchmarks/masking.py reports the same figures on a larger corpus, with the cost per MB.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.masking import mask_text
from tests.masking_corpus import KINDS, hidden_in, ordinary, personal

T = TypeVar("T")


class HypothesisDraw:
    """tests.masking_corpus.Draw on top of hypothesis' data strategy (so failures shrink)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(options))

    def randint(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_generated_personal_number_is_masked(data: st.DataObject) -> None:
    sample = personal(HypothesisDraw(data), data.draw(st.sampled_from(tuple(KINDS))))
    masked = mask_text(sample.text)
    assert len(masked) == len(sample.text), "masking keeps every offset"
    assert hidden_in(masked, sample) >= sample.hidden, (sample.kind, sample.text, masked)


@settings(max_examples=150, deadline=None)
@given(st.data(), st.integers(0, 200), st.integers(0, 200))
def test_a_cut_of_the_masked_text_never_shows_a_hidden_digit(data: st.DataObject, lo: int, width: int) -> None:
    sample = personal(HypothesisDraw(data))
    masked = mask_text(sample.text)
    cut = masked[lo : lo + width]
    hidden = {i for i in range(sample.start, sample.end) if masked[i] == "*"}
    shown = {lo + i for i, ch in enumerate(cut) if ch != "*"}
    assert not hidden & shown


def test_ordinary_numbers_are_left_alone_at_least_999_times_in_1000() -> None:
    rng = random.Random(20261129)
    changed = []
    for _ in range(20_000):
        kind, text = ordinary(rng)
        if mask_text(text) != text:
            changed.append((kind, text))
    assert len(changed) <= 20, changed[:10]


def test_recall_on_a_fixed_sample_is_at_least_999_in_1000() -> None:
    rng = random.Random(11)
    missed = []
    for _ in range(20_000):
        sample = personal(rng)
        if hidden_in(mask_text(sample.text), sample) < sample.hidden:
            missed.append(sample)
    assert len(missed) <= 20, missed[:10]
