"""Repost noise stripping gives what its patterns give, however few of them it runs.

``strip_attribution`` runs each pattern only on texts holding the words it needs, and ``lower_words`` lowers
case and drops punctuation by a table look-up: both must strip exactly what the patterns strip, or reposts
crawled today would stop matching the keys stored for their originals.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from service.items import repost_noise
from service.items.nfkc import nfkc
from service.items.repost_noise import lower_words, strip_attribution, strip_repost_noise

# What reposts put around a copied story, and the line breaks of every kind that splitlines() knows.
PIECES = (
    "【转】", "[转载]", "转：", "（来源：青川日报）", "(记者 王某 通讯员 李某)", "记者 王某", "来源：新华网",
    "原标题：某某", "本报讯", "青川日报讯", "一位家长告诉青川日报记者", "点击上方关注我们", "-END-", "阅读原文",
    "发布时间：2024-01-01", "浏览次数：12", "#澜江头条#", "（完）", "独家", "重磅", "\r\n", "\u2028", "\x0c",
    "\n", "  ", "记者从区住建局获悉", "编辑", "２０２４年", "ＡＢＣ", "Σ", "İ",
)  # fmt: skip
FILLER = "小区门口的化工厂夜间排放异味居民多次反映无人处理，。！？ 12345abc"


def _every_pattern(text: str) -> str:
    """The stripping as it was: every pattern run on every text."""
    n = repost_noise
    text = "\n".join(n._MARKER.sub("", line) for line in nfkc(text).splitlines())
    text = n._ATTRIBUTION_PAREN.sub("", text)
    text = n._BOILERPLATE.sub("", text)
    text = n._HEADER.sub("", text)
    text = n._ATTRIBUTION_LINE.sub("", text)
    text = n._ATTRIBUTION_CLAUSE.sub("", text)
    text = n._HASHTAG.sub("", text)
    return n._OUTLET.sub(r"\1", text)


def test_stripping_equals_every_pattern_run_on_every_text() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        parts = [
            rng.choice(PIECES) if rng.random() < 0.45 else "".join(rng.sample(FILLER, rng.randint(0, 12)))
            for _ in range(rng.randint(1, 10))
        ]
        text = "".join(parts)
        assert strip_attribution(text) == _every_pattern(text), repr(text)
        assert strip_repost_noise(text) == repost_noise._NOISE.sub("", _every_pattern(text).lower())


def test_attribution_is_still_stripped() -> None:
    text = "【转】本报讯（记者 王某）小区化工厂夜间排放异味。\n来源：青川日报\n点击上方关注我们"
    assert strip_repost_noise(text) == "小区化工厂夜间排放异味"


def test_lower_words_equals_the_pattern_for_every_character() -> None:
    for cp in range(0x110000):
        char = chr(cp)
        assert lower_words(char) == repost_noise._NOISE.sub("", char.lower()), hex(cp)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from("ΣσςİIıAaß_ -，。中文字😀\ud800"), st.characters()), max_size=60))
def test_lower_words_equals_the_pattern_on_any_text(text: str) -> None:
    """Final sigma depends on its neighbours, İ lowers to two characters: such texts take the pattern."""
    assert lower_words(text) == repost_noise._NOISE.sub("", text.lower())
