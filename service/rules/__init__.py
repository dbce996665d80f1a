"""Keyword rules: the rule language, the structured form, and the multi-pattern matcher."""

from service.rules.hits import Highlight, Hit, make_snippets
from service.rules.language import RuleSyntaxError, parse
from service.rules.matcher import (
    CompiledRule,
    Matcher,
    MatcherHolder,
    compile_rule,
    evaluate_expression,
)

__all__ = [
    "CompiledRule",
    "Highlight",
    "Hit",
    "Matcher",
    "MatcherHolder",
    "RuleSyntaxError",
    "compile_rule",
    "evaluate_expression",
    "make_snippets",
    "parse",
]
