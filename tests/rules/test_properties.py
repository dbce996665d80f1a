"""The automaton matcher agrees with the slow reference evaluator on random rules and texts."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.rules.matcher import Matcher, compile_rule
from tests.rules.reference import evaluate

# Overlapping terms, case and width variants, and characters that change length when folded.
TERMS = ["化工", "化工厂", "工厂", "ab", "AB", "ｂ", "噪音", "……", "...", "㎡", "m2", "ß", "ss"]
# A long filler takes texts past the fold's short-text path to its table path (numpy, segments).
FILLER = ["的", " ", "，", "a", "厂", "…", "市民反映问题，" * 16]

term = st.sampled_from(TERMS).map(lambda t: f'"{t}"')
scope = st.sampled_from(["", "title:", "content:"])
scoped_term = st.builds(lambda s, t: s + t, scope, term)
near = st.builds(
    lambda s, a, b, n: f"{s}{a} NEAR/{n} {s}{b}",
    scope,
    term,
    term,
    st.integers(min_value=0, max_value=4),
)
expression = st.recursive(
    st.one_of(scoped_term, near),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} AND {b})", inner, inner),
        st.builds(lambda a, b: f"({a} OR {b})", inner, inner),
        st.builds(lambda a: f"NOT ({a})", inner),
    ),
    max_leaves=6,
)
text = st.lists(st.sampled_from(TERMS + FILLER), max_size=10).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(expression, min_size=1, max_size=5), text, text)
def test_matcher_agrees_with_reference(expressions, title, content):
    rules = [compile_rule(f"r{i}", "d", "normal", expr) for i, expr in enumerate(expressions)]
    hits = {hit.rule_id: hit for hit in Matcher.build(rules).match(title, content)}
    for rule in rules:
        matched, highlights = evaluate(rule.node, title, content)
        assert (rule.id in hits) == matched, (rule.id, title, content)
        if matched:
            assert hits[rule.id].highlights == highlights
