"""The rule language: what parses into what, and where broken expressions are reported."""

from __future__ import annotations

import pytest

from service.rules.language import And, Near, Not, Or, RuleSyntaxError, Term, parse


def test_precedence_not_binds_tighter_than_and_than_or():
    node = parse("甲 OR NOT 乙 AND 丙")
    assert isinstance(node, Or)
    left, right = node.children
    assert left == Term("甲", "甲", position=0)
    assert isinstance(right, And)
    assert isinstance(right.children[0], Not)
    assert right.children[0].child.text == "乙"


def shape(node):
    """The tree without positions, to compare spellings that differ in length."""
    if isinstance(node, Term):
        return ("term", node.text, node.fields)
    if isinstance(node, Near):
        return ("near", shape(node.left), shape(node.right), node.distance)
    if isinstance(node, Not):
        return ("not", shape(node.child))
    return (type(node).__name__, tuple(shape(c) for c in node.children))


def test_symbol_and_full_width_operators_equal_words():
    words = shape(parse("(排污 OR 污染) AND NOT 招聘"))
    assert shape(parse("(排污 | 污染) & !招聘")) == words
    assert shape(parse("（排污 ｜ 污染）＆ ！招聘")) == words
    assert shape(parse("(排污 ＯＲ 污染) ＡＮＤ ＮＯＴ 招聘")) == words


def test_terms_are_folded_but_keep_their_spelling():
    term = parse("ＡＢＣ")
    assert isinstance(term, Term)
    assert (term.text, term.raw) == ("abc", "ＡＢＣ")


def test_quoted_phrases_keep_spaces_and_operators_literal():
    assert parse('"A AND B"') == Term("a and b", "A AND B", position=0)
    assert parse("“一氧化碳 中毒”").text == "一氧化碳 中毒"


def test_field_scope_applies_to_a_term_or_a_group():
    node = parse("title:噪音 AND content:(夜间 OR 施工)")
    assert isinstance(node, And)
    assert node.children[0].fields == ("title",)
    assert all(t.fields == ("content",) for t in node.children[1].children)
    assert parse("噪音").fields == ("title", "content")


def test_near_keeps_both_terms_and_distance():
    node = parse('拖欠 NEAR/5 "农民工 工资"')
    assert isinstance(node, Near)
    assert (node.left.text, node.right.text, node.distance) == ("拖欠", "农民工 工资", 5)
    assert isinstance(parse("NOT 拖欠 NEAR/5 工资"), Not)


def test_lower_case_words_are_terms_not_operators():
    node = parse("android OR ios")
    assert [t.text for t in node.children] == ["android", "ios"]


@pytest.mark.parametrize(
    ("expr", "position", "message"),
    [
        ("(排污 OR 污染", 0, "左括号 '(' 没有闭合"),
        ("排污 OR 污染)", 8, "多余的右括号 ')'"),
        ("排污 AND", 6, "AND 后面缺少词"),
        ("AND 排污", 0, "此处应为词"),
        ("排污 OR OR 污染", 6, "OR 后面缺少词"),
        ('排污 AND ""', 7, "引号内为空"),
        ('排污 AND "污染', 7, "引号没有闭合"),
        ("拖欠 NEAR/x 工资", 3, "NEAR 需要写明距离"),
        ("拖欠 NEAR 工资", 3, "NEAR 需要写明距离"),
        ("author:张三", 0, "未知字段 'author'"),
        ("排污 污染", 3, "两个词之间缺少 AND/OR"),
        ("排污 and 污染", 3, "运算符须大写"),
        ("()", 1, "括号内为空"),
        ("拖欠 NEAR/3 (工资 OR 薪水)", 10, "NEAR 右边只能是词或带引号的短语"),
        ("(拖欠 OR 欠薪) NEAR/3 工资", 0, "NEAR 左边只能是词或带引号的短语"),
        ("甲 NEAR/2 乙 NEAR/2 丙", 11, "NEAR 不能连用"),
        ("title:甲 NEAR/2 content:乙", 8, "不同字段"),
        ("title:(content:噪音)", 7, "不能嵌套"),
        ("title: 噪音", 7, "title: 后面应紧跟"),
        ("", 0, "表达式为空"),
        ("   ", 0, "表达式为空"),
        ("排污 ” 污染", 3, "右引号"),
    ],
)
def test_broken_expressions_report_the_position(expr, position, message):
    with pytest.raises(RuleSyntaxError) as info:
        parse(expr)
    assert info.value.position == position
    assert message in info.value.message
    assert info.value.column == position + 1
    assert str(info.value).endswith(f"（位置 {position}，第 {position + 1} 个字符）")
