"""Matching behaviour a rule author relies on, checked on the automaton matcher and the reference alike."""

from __future__ import annotations

import threading

import pytest

from service.folding import Folded
from service.rules.hits import make_snippets
from service.rules.language import RuleSyntaxError
from service.rules.matcher import Matcher, MatcherHolder, compile_rule, evaluate_expression
from tests.rules.reference import evaluate


def matches(expr: str, content: str, title: str = "") -> bool:
    rule = compile_rule("r", "d", "normal", expr)
    automaton = bool(Matcher.build([rule]).match(title, content))
    reference, _ = evaluate(rule.node, title, content)
    assert automaton == reference, f"matcher and reference disagree on {expr!r}"
    return automaton


@pytest.mark.parametrize(
    ("expr", "content", "expected"),
    [
        # full-width / half-width and case
        ("ＡＢＣ", "abc化工有限公司", True),
        ("abc", "ＡＢＣ化工有限公司", True),
        ("Abc", "aBC化工", True),
        ("１２３４５", "拨打12345热线", True),
        ("12345", "拨打１２３４５热线", True),
        ("WiFi", "小区ＷＩＦＩ信号差", True),
        ("m2", "每平方米（㎡）收费", True),
        # substring semantics and overlapping terms
        ("化工", "化工厂排污", True),
        ("化工厂", "化工园区排污", False),
        ("化工 AND 化工厂", "化工厂", True),
        ("化工厂 AND NOT 化工", "化工厂", False),
        ("工厂 AND 化工", "化工厂", True),
        # NOT, including rules made only of NOT
        ("NOT 招聘", "", True),
        ("NOT 招聘", "化工厂招聘工人", False),
        ("污染 AND NOT 招聘", "河道污染严重", True),
        ("污染 AND NOT 招聘", "污染治理岗位招聘", False),
        ("NOT (招聘 OR 演练)", "应急演练", False),
        ("NOT NOT 污染", "污染", True),
        # precedence: NOT > AND > OR
        ("甲 OR 乙 AND 丙", "甲", True),
        ("甲 OR 乙 AND 丙", "乙", False),
        ("NOT 甲 AND 乙", "乙", True),
        ("NOT 甲 AND 乙", "甲乙", False),
        ("NOT 甲 OR 乙", "甲乙", True),
        # NEAR at its exact boundary: n characters strictly between hold, n + 1 do not
        ("拖欠 NEAR/3 工资", "拖欠一二三工资", True),
        ("拖欠 NEAR/3 工资", "拖欠一二三四工资", False),
        ("拖欠 NEAR/3 工资", "工资一二三拖欠", True),
        ("拖欠 NEAR/3 工资", "工资一二三四拖欠", False),
        ("拖欠 NEAR/0 工资", "拖欠工资", True),
        ("拖欠 NEAR/0 工资", "拖欠了工资", False),
        ("化工 NEAR/0 工厂", "化工厂", True),
        # distances count original characters: …… is two characters though it folds to six dots
        ("拖欠 NEAR/2 工资", "拖欠……工资", True),
        ("拖欠 NEAR/1 工资", "拖欠……工资", False),
        ("投诉 NEAR/5 投诉", "我要投诉", False),
        ("投诉 NEAR/5 投诉", "投诉了又投诉", True),
        ('"农民工 工资" NEAR/2 拖欠', "农民工 工资被拖欠", True),
        # quoted phrases with operators and spaces are literal text
        ('"A AND B"', "发现 a and b 字样", True),
        ('"A AND B"', "a 和 b", False),
        ("“一氧化碳 中毒”", "疑似一氧化碳 中毒", True),
    ],
)
def test_expression_table(expr, content, expected):
    assert matches(expr, content) is expected


@pytest.mark.parametrize(
    ("expr", "title", "content", "expected"),
    [
        ("title:噪音", "夜间噪音扰民", "", True),
        ("title:噪音", "反映问题", "夜间噪音扰民", False),
        ("content:噪音", "夜间噪音扰民", "", False),
        ("噪音", "夜间噪音扰民", "", True),
        ("噪音", "", "夜间噪音扰民", True),
        ("title:(噪音 OR 扰民) AND content:施工", "扰民", "夜间施工", True),
        ("title:(噪音 OR 扰民) AND content:施工", "施工", "扰民", False),
        ("拖欠 NEAR/50 工资", "拖欠", "工资", False),
        ("title:拖欠 NEAR/5 工资", "拖欠了工资", "", True),
        ("title:拖欠 NEAR/5 工资", "", "拖欠了工资", False),
        ("ｔｉｔｌｅ：噪音", "噪音", "", True),
    ],
)
def test_field_scopes(expr, title, content, expected):
    assert matches(expr, content, title) is expected


def test_structured_form():
    rule = compile_rule(
        "env-river",
        "env",
        "normal",
        regions=["青川", "河西区"],
        subjects=["化工厂", "排污口"],
        events=["异味", "死鱼"],
        exclude=["招聘", "演练"],
    )
    matcher = Matcher.build([rule])
    assert matcher.match("", "青川镇化工厂附近河道有异味")
    assert matcher.match("河西区排污口", "出现大量死鱼")
    assert not matcher.match("", "青川镇化工厂附近")  # no event word
    assert not matcher.match("", "河西区化工厂开展异味泄漏应急演练")  # excluded
    with pytest.raises(ValueError, match="regions"):
        compile_rule("x", "d", regions=[])
    with pytest.raises(ValueError, match=r"subjects\[1\]"):
        compile_rule("x", "d", subjects=["化工厂", " "])


def test_structured_entries_are_literal_text():
    rule = compile_rule("x", "d", subjects=["A OR B"])
    assert Matcher.build([rule]).match("", "a or b")
    assert not Matcher.build([rule]).match("", "a")


def test_hit_carries_rule_department_severity_and_original_offsets():
    rules = [
        compile_rule("env-pollution", "env", "major", "(排污 OR 异味) AND 化工厂"),
        compile_rule("noise", "env", "minor", "噪音"),
        compile_rule("wage", "hrss", "critical", "ＡＢＣ"),
    ]
    # ①, ㎡ and …… all fold to more than one character; highlights must still land on the right text.
    content = "①号楼㎡旁……ＡＢＣ化工厂排污，ＡＢＣ"
    hits = Matcher.build(rules).match("", content)
    assert [(h.rule_id, h.department, h.severity) for h in hits] == [
        ("env-pollution", "env", "major"),
        ("wage", "hrss", "critical"),
    ]
    pollution, wage = hits
    assert [(h.field, content[h.start : h.end], h.term) for h in pollution.highlights] == [
        ("content", "化工厂", "化工厂"),
        ("content", "排污", "排污"),
    ]
    assert [content[h.start : h.end] for h in wage.highlights] == ["ＡＢＣ", "ＡＢＣ"]
    assert [h.start for h in wage.highlights] == [7, 16]


def test_matching_finds_positions_only_for_the_highlights_asked_for(monkeypatch):
    # At city scale (10k rules) finding every occurrence of every matched rule's terms was a fifth of the
    # matcher's time, although only alerts show them: matching decides from which terms occur, and a hit's
    # highlights are found when first read, still in the item's own offsets.
    looked_up: list[str] = []
    occurrences = Folded.occurrences

    def counting(self: Folded, term: str) -> list[tuple[int, int]]:
        looked_up.append(term)
        return occurrences(self, term)

    monkeypatch.setattr(Folded, "occurrences", counting)
    matcher = Matcher.build(
        [
            compile_rule("r1", "env", "major", regions=["青川镇"], events=["排污", "异味"], exclude=["演练"]),
            compile_rule("r2", "env", "minor", "NOT 表扬"),
        ]
    )
    title, content = "青川镇化工厂", "……青川镇ＡＢ化工厂排污，异味严重"
    hits = matcher.match(title, content)
    assert [h.rule_id for h in hits] == ["r1", "r2"]
    assert looked_up == []
    assert [(h.field, (title, content)[h.field == "content"][h.start : h.end]) for h in hits[0].highlights] == [
        ("title", "青川镇"),
        ("content", "青川镇"),
        ("content", "排污"),
        ("content", "异味"),
    ]
    assert hits[1].highlights == ()
    assert looked_up  # found on the first read, once
    seen = len(looked_up)
    assert len(hits[0].highlights) == 4
    assert len(looked_up) == seen


def test_common_words_are_looked_up_only_for_candidate_rules():
    # Every item names dozens of event and subject words; scanning for them cost more than all else of the
    # matcher at 10k rules. Only the rare words that select a rule (its places here) are in the automaton;
    # a candidate's other words, in either field or under NOT, NEAR and title:, are checked when it is one.
    rules = [
        compile_rule("r1", "env", "major", regions=["青川镇"], subjects=["化工厂"], events=["排污"], exclude=["演练"]),
        compile_rule("r2", "env", "minor", regions=["河西区"], events=["异味", "排污"]),
        compile_rule("r3", "hrss", "normal", '东湖街道 AND (拖欠 NEAR/2 工资) AND NOT title:"表扬"'),
        compile_rule("r4", "hrss", "normal", "(东湖街道 OR 河西区) AND title:欠薪"),
    ]
    matcher = Matcher.build(rules)
    assert matcher.key_term_count == 4  # 青川镇, 河西区, 东湖街道 and r4's rarer title word 欠薪
    cases = [
        ("青川镇化工厂", "排污严重"),
        ("", "青川镇化工厂排污演练"),
        ("河西区", "有异味"),
        ("异味", "河西区青川镇"),
        ("欠薪", "东湖街道拖欠了工资"),
        ("表扬", "东湖街道拖欠工资"),
        ("", "东湖街道拖欠三个月工资"),
    ]
    for title, content in cases:
        hits = matcher.match(title, content)
        expected = [(r.id, *evaluate(r.node, title, content)[1:]) for r in rules if evaluate(r.node, title, content)[0]]
        assert [(h.rule_id, h.highlights) for h in hits] == expected, (title, content)
    assert [h.rule_id for h in matcher.match("欠薪", "东湖街道拖欠了工资")] == ["r3", "r4"]


def test_rules_true_on_an_empty_text_hit_unless_a_falsifying_term_occurs():
    rules = [compile_rule(f"not-{i}", "d", "normal", f"NOT 词{i % 7}") for i in range(50)]
    rules.append(compile_rule("both", "d", "normal", "NOT (词1 AND 词2)"))
    matcher = Matcher.build(rules)
    ids = [h.rule_id for h in matcher.match("词1", "正文词2")]
    assert ids == [f"not-{i}" for i in range(50) if i % 7 not in (1, 2)]
    assert [h.rule_id for h in matcher.match("", "")] == [*(f"not-{i}" for i in range(50)), "both"]


def test_highlights_in_title_and_after_combining_marks():
    rule = compile_rule("r", "d", "normal", "café OR 噪音")
    title = "Cafe\u0301门口噪音"  # e + combining acute: two characters for one folded é
    hits = Matcher.build([rule]).match(title, "")
    assert [(h.field, title[h.start : h.end]) for h in hits[0].highlights] == [
        ("title", "Cafe\u0301"),
        ("title", "噪音"),
    ]


def test_negated_terms_are_not_highlighted():
    hits = Matcher.build([compile_rule("r", "d", "normal", "污染 AND NOT (招聘 AND 广告)")]).match("", "污染 招聘")
    assert [h.term for h in hits[0].highlights] == ["污染"]


def test_many_rules_share_terms_and_only_matching_ones_hit():
    rules = [compile_rule(f"r{i}", "d", "normal", f"小区{i}号楼 AND (噪音 OR 漏水)") for i in range(200)]
    rules.append(compile_rule("not-only", "d", "normal", "NOT 招聘"))
    matcher = Matcher.build(rules)
    assert matcher.term_count == 203  # deduplicated: 200 + 噪音 + 漏水 + 招聘
    assert [h.rule_id for h in matcher.match("", "小区17号楼漏水")] == ["r17", "not-only"]
    assert [h.rule_id for h in matcher.match("", "小区17号楼漏水，招聘")] == ["r17"]


def test_duplicate_rule_ids_are_refused():
    with pytest.raises(ValueError, match="duplicate rule id 'a'"):
        Matcher.build([compile_rule("a", "d", "normal", "甲"), compile_rule("a", "e", "normal", "乙")])


def test_bad_severity_is_refused():
    with pytest.raises(ValueError, match="severity"):
        compile_rule("a", "d", "urgent", "甲")


def test_empty_matcher_matches_nothing():
    assert Matcher.build([]).match("标题", "正文") == []


def test_holder_swaps_whole_matchers():
    holder = MatcherHolder()
    assert holder.match("", "噪音") == []
    holder.rebuild([compile_rule("noise", "env", "normal", "噪音")])
    in_flight = holder.matcher
    holder.rebuild([compile_rule("water", "water", "normal", "漏水")])
    # An item that took the matcher before the swap finishes on the old rule set.
    assert [h.rule_id for h in in_flight.match("", "噪音漏水")] == ["noise"]
    assert [h.rule_id for h in holder.match("", "噪音漏水")] == ["water"]
    assert holder.generation == 2
    with pytest.raises(ValueError, match="duplicate"):
        holder.rebuild([compile_rule("a", "d", "normal", "甲"), compile_rule("a", "d", "normal", "乙")])
    assert [h.rule_id for h in holder.match("", "噪音漏水")] == ["water"]


def test_holder_under_concurrent_swaps_gives_one_rule_set_per_item():
    sets = [[compile_rule(f"s{k}-{i}", "d", "normal", "噪音") for i in range(5)] for k in range(2)]
    matchers = [Matcher.build(s) for s in sets]
    holder = MatcherHolder(matchers[0])
    stop = threading.Event()
    mixed: list[set[str]] = []

    def swapper() -> None:
        k = 0
        while not stop.is_set():
            k ^= 1
            holder.replace(matchers[k])

    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        for _ in range(300):
            prefixes = {h.rule_id.split("-")[0] for h in holder.match("", "噪音")}
            if len(prefixes) != 1:
                mixed.append(prefixes)
    finally:
        stop.set()
        thread.join()
    assert mixed == []


def test_evaluate_expression_for_the_rules_test_endpoint():
    result = evaluate_expression("拖欠 NEAR/2 工资", "工地拖欠农民工工资", title="讨薪")
    assert result == {
        "matched": False,
        "highlights": [
            {"field": "content", "start": 2, "end": 4, "term": "拖欠"},
            {"field": "content", "start": 7, "end": 9, "term": "工资"},
        ],
        "truncated": False,
    }
    assert evaluate_expression("拖欠 NEAR/3 工资", "工地拖欠农民工工资")["matched"] is True
    assert evaluate_expression("拖欠 AND title:讨薪", "工地拖欠", title="讨薪")["matched"] is True
    with pytest.raises(RuleSyntaxError) as info:
        evaluate_expression("拖欠 AND", "文本")
    assert info.value.position == 6


def test_snippets_mark_terms_and_cut_around_them():
    content = "开头" + "无关内容" * 20 + "化工厂排污严重" + "其他内容" * 20
    hits = Matcher.build([compile_rule("r", "d", "normal", "化工 AND 排污")]).match("化工园区", content)
    snippets = make_snippets("化工园区", content, hits[0].highlights, width=30)
    assert snippets[0] == "【化工】园区"
    assert snippets[1].startswith("…")
    assert snippets[1].endswith("…")
    assert "【化工】厂【排污】严重" in snippets[1]
    assert len(snippets[1]) <= 30 + 2 + 4 * 2
    plain = make_snippets("", content, [h for h in hits[0].highlights if h.field == "content"], mark=("", ""))
    assert plain[0].count("化工厂排污") == 1
