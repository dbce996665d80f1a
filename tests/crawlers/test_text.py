"""Cleaning HTML, reading labelled values, choosing charsets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawlers.encoding import choose_encoding
from crawlers.extract import ExtractionError, json_path, load_json
from crawlers.items import RawItem
from crawlers.pipelines import to_item
from crawlers.text import after_label, html_to_text
from service.clock import SHANGHAI
from service.store.base import item_id

PAGE = "<html><head><meta charset='gb2312'></head><body>市民反映化工厂异味严重，夜间尤甚。</body></html>"


def test_paragraphs_kept_scripts_styles_comments_dropped() -> None:
    fragment = (
        "<div><style>p{color:red}</style><p>第一段&nbsp;内容</p><!-- 注释 -->"
        "<script>var a = '<p>x</p>';</script><p>第二段<br>换行</p>   <span>  多余   空格 </span></div>"
    )
    assert html_to_text(fragment) == "第一段 内容\n第二段\n换行\n多余 空格"


def test_text_kept_as_published_entities_decoded() -> None:
    # Full-width letters, digits and punctuation stay: folding is for matching and search keys only.
    assert html_to_text("ＡＢＣ１２３　全角&amp;符号，（注）：") == "ＡＢＣ１２３ 全角&符号，（注）："
    assert html_to_text("a < b and c > d") == "a < b and c > d"


def test_table_rows_become_lines() -> None:
    table = "<table><tr><td>承办单位：</td><td>市环保局</td></tr><tr><td>状态</td><td>已办结</td></tr></table>"
    assert html_to_text(table) == "承办单位： 市环保局\n状态 已办结"


def test_after_label_reads_same_cell_or_next_cell() -> None:
    text = html_to_text(
        "<table><tr><td>来信时间：2023-07-01</td><td>回复时间</td><td>2023-07-03</td></tr>"
        "<tr><td>承办单位：市环保局</td></tr></table><p>处理结果：</p><p>已整改</p>",
        keep_cells=True,
    )
    assert after_label(text, "来信时间") == "2023-07-01"
    assert after_label(text, "回复时间") == "2023-07-03"
    assert after_label(text, "承办单位：") == "市环保局"
    assert after_label(text, "处理结果") == "已整改"
    assert after_label(text, "不存在") == ""
    assert after_label(text, "承办单位:") == "市环保局"  # a half-width label finds the full-width one


def test_gbk_page_with_wrong_or_missing_charset() -> None:
    body = PAGE.encode("gbk")
    assert choose_encoding(body, "text/html; charset=utf-8") == "gb18030"
    assert choose_encoding(PAGE.replace("<meta charset='gb2312'>", "").encode("gbk"), "text/html") == "gb18030"
    assert body.decode(choose_encoding(body, "text/html; charset=utf-8")) == PAGE


def test_utf8_page_claiming_gb2312_is_utf8_and_configured_encoding_wins() -> None:
    assert choose_encoding(PAGE.encode("utf-8"), None) == "utf-8"
    assert choose_encoding(PAGE.encode("utf-8"), "text/html; charset=gbk", configured="utf-8") == "utf-8"
    assert choose_encoding(b"plain", "text/html; charset=utf-8", configured="gbk") == "gb18030"


def test_to_item_builds_a_stable_item() -> None:
    fetched = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    raw = RawItem(
        source="s",
        channel="hotline",
        url="http://example.gov.cn/a.html?b=2&a=1#top",
        title="<b>标题</b>",
        content="<p>内容</p>",
        published_at="2023年7月21日",
        reply="暂无答复",
        status=" 办理中 ",
    )
    item = to_item(raw, fetched, SHANGHAI)
    assert item.id == item_id("s", None, "http://example.gov.cn/a.html?a=1&b=2")
    assert (item.title, item.content, item.status, item.reply) == ("标题", "内容", "办理中", None)
    assert item.published_at == datetime(2023, 7, 20, 16, 0, tzinfo=UTC)
    assert item.fingerprint == item.compute_fingerprint()
    assert item.fingerprint
    later = to_item(raw, datetime(2026, 11, 24, tzinfo=UTC), SHANGHAI)
    assert later.fingerprint == item.fingerprint  # the fetch time is not content


def test_jsonp_and_hostile_bodies() -> None:
    assert load_json(' jQuery123_456({"data": {"list": [{"a": {"b": 1}}]}});') == {"data": {"list": [{"a": {"b": 1}}]}}
    assert json_path({"data": {"list": [{"a": {"b": 1}}]}}, "data.list.0.a.b") == 1
    assert json_path({"data": None}, "data.list") is None
    with pytest.raises(ExtractionError):
        load_json("cb(" + " " * 1_000_000)
    with pytest.raises(ExtractionError):
        load_json("<html>安全验证</html>")
