"""The README's table of ticket moves is the code's table, rendered; they cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from service.ledger.transitions import transitions_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_transition_table_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- transitions:begin -->\n(.*?)\n<!-- transitions:end -->", text, re.S)
    assert block is not None, "README lost its transitions block"
    assert block.group(1).strip() == transitions_markdown().strip()


def test_readme_names_the_two_commands_and_ci_calls_the_test_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert "bash scripts/run.sh" in text
    assert "bash scripts/test.sh" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test.sh" in ci
