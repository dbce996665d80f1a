"""What reposts change without changing the story, stripped before texts are compared (see
service.items.duplicates): repost markers, attribution lines and clauses, outlet names, boilerplate, header
lines, topics; then case, whitespace and punctuation.
"""

from __future__ import annotations

import codecs
import re
from functools import cache

import numpy as np

from service.items.nfkc import nfkc

# Repost markers at the start of a headline or line: 【转】【转发】【转载】[转] (转) 转：
_MARKER = re.compile(
    r"^\s*(?:[【\[(（]\s*(?:转|转发|转载|转帖|荐|推荐|原创|独家|重磅)\s*[】\])）]|(?:转|转发|转载)\s*[:：])\s*"
)
# Words that start an attribution: what follows them up to the end of the clause names a source or a writer.
_ATTRIBUTION_WORDS = (
    "转自|转载自|转载于|来源|来源于|稿件来源|本文来源|文章来源|信息来源|原标题|原文标题|原题|原文链接|原文地址"
    "|责任编辑|责编|编辑|校对|审核|记者|通讯员|实习生|作者|撰文|摄影|摄像|图片|图文|出品|监制|统筹"
)
# A parenthesised attribution anywhere: （转自青川日报） (记者 王某 通讯员 李某)
_ATTRIBUTION_PAREN = re.compile(rf"[(（【\[]\s*(?:{_ATTRIBUTION_WORDS})[^()（）【】\[\]]{{0,40}}[)）】\]]")
# A whole line that is an attribution: 来源：青川日报 / 记者 王某 / 原标题：…  (a line "记者从…获悉" is news).
_ATTRIBUTION_LINE = re.compile(rf"^[ \t]*(?:{_ATTRIBUTION_WORDS})(?:[ \t]*[:：|｜]|[ \t]+).{{0,60}}$", re.M)
_ATTRIBUTION_CLAUSE = re.compile(rf"(?:{_ATTRIBUTION_WORDS})\s*[:：]\s*[^\s，。,;；！!？?]{{0,30}}")
# Outlets: 本报/本台/本网, and names of papers, stations and sites (青川日报, 河西区融媒体中心…), with the
# 讯 / 消息 / 报道 words around them, so 本报讯 and 青川日报讯 normalize alike. A name counts only where
# an outlet name stands (line start, after punctuation or 告诉/向/据…), so "一位家长告诉青川日报记者"
# keeps "一位家长告诉".
_OWN_OUTLETS = ("本报", "本台", "本网", "本刊", "本站")
_OUTLET_KINDS = (
    "日报", "晚报", "早报", "晨报", "都市报", "商报", "时报",
    "法制报", "青年报", "电视台", "广播电视台", "广播电台", "融媒体中心", "新闻中心",
    "新闻网", "报社", "客户端",
)  # fmt: skip
_OUTLET = re.compile(
    r"(^|[\s，。、；：！？,.;:!?“”\"'（(【\[]|告诉|向|据|对|接受|来自|转自|联系|致电|给|被|经)"
    rf"(?:{'|'.join(_OWN_OUTLETS)}|[\u4e00-\u9fff]{{2,5}}(?:{'|'.join(_OUTLET_KINDS)}))"
    r"(?:综合)?(?:讯|消息|报道)?",
    re.M,
)
# A text without any of these words has no outlet name: the regex (tried at every punctuation mark) is skipped.
_OUTLET_WORDS = (*_OWN_OUTLETS, *_OUTLET_KINDS)
# Boilerplate lines sites add around copied text.
_BOILERPLATE_WORDS = (
    "点击上方", "关注我们", "扫码关注", "长按二维码", "版权归", "如有侵权", "侵删",
    "免责声明", "本文仅代表", "转载请注明", "阅读原文", "原文链接", "分享到", "打印本页",
    "关闭窗口", "【纠错】", "(完)", "（完）", "-end-", "返回顶部",
)  # fmt: skip
_BOILERPLATE = re.compile(rf"^.*(?:{'|'.join(map(re.escape, _BOILERPLATE_WORDS))}).*$", re.M | re.I)
# Date-and-source header lines of article pages: 2024-03-05 10:23  来源：… / 发布时间：…
_HEADER = re.compile(r"^\s*(?:发布时间|发布日期|时间|日期|浏览次数|阅读|字号)[:：].*$", re.M)
# Weibo topics (#澜江头条#) a reposter puts before the copied text, as markers are.
_HASHTAG = re.compile(r"#[^#\s]{1,20}#")
_NOISE = re.compile(r"[\W_]+", re.UNICODE)
# The words the patterns above need (checked before a pattern runs). A marker holds 转, 荐, 原创, 独家 or 重磅;
# a header line one of these words (发布时间 holds 时间); boilerplate is matched ignoring case, as its pattern.
_MARKER_WORD = re.compile("转|荐|原创|独家|重磅")
_ATTRIBUTION_WORD = re.compile(_ATTRIBUTION_WORDS)
_BOILERPLATE_WORD = re.compile("|".join(map(re.escape, _BOILERPLATE_WORDS)), re.I)
_HEADER_WORD = re.compile("时间|日期|浏览次数|阅读|字号")
_OUTLET_WORD = re.compile("|".join(_OUTLET_WORDS))


def strip_attribution(text: str) -> str:
    """The text without repost markers, attribution lines and clauses, outlet names and boilerplate."""
    text = nfkc(text or "")
    # Each pattern runs only on a text holding one of the words it needs (most complaints hold none): one
    # search for the words costs a fraction of a pattern tried at every position. Removing whole lines
    # (boilerplate, headers) cannot bring a word together, so the attribution check holds for the later two.
    if _MARKER_WORD.search(text):
        text = "\n".join([_MARKER.sub("", line) for line in text.splitlines()])
    else:
        text = "\n".join(text.splitlines())  # line breaks of every kind become \n, as with the markers
    attributed = _ATTRIBUTION_WORD.search(text) is not None
    if attributed:
        text = _ATTRIBUTION_PAREN.sub("", text)
    if _BOILERPLATE_WORD.search(text):
        text = _BOILERPLATE.sub("", text)
    if _HEADER_WORD.search(text):
        text = _HEADER.sub("", text)
    if attributed:
        text = _ATTRIBUTION_LINE.sub("", text)
        text = _ATTRIBUTION_CLAUSE.sub("", text)
    text = _HASHTAG.sub("", text)
    return _OUTLET.sub(r"\1", text) if _OUTLET_WORD.search(text) else text


def strip_repost_noise(text: str) -> str:
    """Comparable text: attribution stripped, lower case, no whitespace or punctuation."""
    return lower_words(strip_attribution(text))


def lower_words(text: str) -> str:
    """``_NOISE.sub("", text.lower())``: by one table look-up per character, where the table can say."""
    try:
        units = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
    except UnicodeEncodeError:  # a lone surrogate
        return _NOISE.sub("", text.lower())
    if len(units) != len(text):  # characters beyond the BMP (UTF-16 surrogate pairs)
        return _NOISE.sub("", text.lower())
    mapped = _lower_word_table().take(units)
    if len(mapped) and mapped.max() == _ASK:
        return _NOISE.sub("", text.lower())
    return codecs.utf_16_le_decode(mapped[mapped != 0].tobytes())[0]


# In the table: a character whose lower case is not one character of the BMP, or depends on its neighbours
# (Σ at the end of a word is ς), or a surrogate. The whole text then goes through lower() and the pattern.
_ASK = 0xFFFF


@cache
def _lower_word_table() -> np.ndarray:
    """uint16 [BMP code point]: its lower case when that is a word character (not _), 0 when the pattern
    removes it, _ASK when the table cannot say (tests/items/test_repost_noise.py holds it to the pattern)."""
    table = np.full(0x10000, _ASK, dtype=np.uint16)
    table[0] = 0  # NUL is noise; it is also the separator below
    points = [cp for cp in range(1, 0x10000) if not 0xD800 <= cp < 0xE000 and cp != ord("Σ")]
    # One lower() of all characters at once (a separator that is not cased keeps each on its own).
    lowered = "\x00".join(map(chr, points)).lower().split("\x00")
    for cp, low in zip(points, lowered, strict=True):
        if len(low) == 1 and ord(low) != _ASK:
            table[cp] = ord(low) if low.isalnum() else 0
    return table
