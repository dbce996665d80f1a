"""The ticket move table: every allowed move, every forbidden one, roles and the README rendering."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import pytest

from service.ledger.transitions import (
    ACTIONS,
    MOVES,
    STATUSES,
    Facts,
    RoleNotAllowedError,
    TransitionNotAllowed,
    allowed_actions,
    apply,
    consistency_error,
    next_status,
    require_role,
    transitions_markdown,
)

Guard = Callable[[Facts], bool]


def always(_: Facts) -> bool:
    return True


def no_pending(f: Facts) -> bool:
    return not f.extension_pending


def pending(f: Facts) -> bool:
    return f.extension_pending


WORKING = ("acknowledged", "handled", "responded")

# The specification written out independently of the module: (status, action) -> (target, guard).
EXPECTED: dict[tuple[str, str], tuple[str, Guard]] = {
    ("new", "acknowledge"): ("acknowledged", always),
    ("acknowledged", "handle"): ("handled", always),
    ("acknowledged", "respond"): ("responded", always),
    ("handled", "respond"): ("responded", lambda f: not f.responded),
    ("responded", "handle"): ("handled", lambda f: not f.handled),
    ("handled", "close"): ("closed", lambda f: f.responded),
    ("responded", "close"): ("closed", lambda f: f.handled),
    ("new", "return"): ("returned", always),
    ("acknowledged", "return"): ("returned", always),
    ("closed", "reopen"): ("acknowledged", always),
    **{(s, "reassign"): ("new", always) for s in ("new", *WORKING, "returned")},
    **{(s, "escalate"): (s, always) for s in ("new", *WORKING)},
    **{(s, "request_extension"): (s, no_pending) for s in WORKING},
    **{(s, "approve_extension"): (s, pending) for s in WORKING},
    **{(s, "reject_extension"): (s, pending) for s in WORKING},
}

# (status, handled, responded, extension_pending) combinations a real ticket can be in.
CONSISTENT = {
    ("new", False, False, False),
    ("returned", False, False, False),
    ("acknowledged", False, False, False),
    ("acknowledged", False, False, True),
    *(("handled", True, r, p) for r, p in product((False, True), repeat=2)),
    *(("responded", h, True, p) for h, p in product((False, True), repeat=2)),
    ("closed", True, True, False),
}


def all_states() -> list[tuple[str, Facts]]:
    return [
        (status, Facts(handled=h, responded=r, extension_pending=p, escalated=e))
        for status in STATUSES
        for h, r, p, e in product((False, True), repeat=4)
    ]


def consistent_states() -> list[tuple[str, Facts]]:
    return [(s, f) for s, f in all_states() if (s, f.handled, f.responded, f.extension_pending) in CONSISTENT]


def test_table_has_exactly_the_specified_rows() -> None:
    assert {(m.source, m.action) for m in MOVES} == set(EXPECTED)


def test_consistency_check_agrees_with_the_specification() -> None:
    for status, facts in all_states():
        expected = (status, facts.handled, facts.responded, facts.extension_pending) in CONSISTENT
        assert (consistency_error(status, facts) is None) == expected, (status, facts)


@pytest.mark.parametrize(("status", "facts"), consistent_states())
def test_every_move_from_a_state_is_allowed_or_refused_as_specified(status: str, facts: Facts) -> None:
    for action in ACTIONS:
        spec = EXPECTED.get((status, action))
        if spec is not None and spec[1](facts):
            assert next_status(status, action, facts) == spec[0], (status, action, facts)
        else:
            with pytest.raises(TransitionNotAllowed) as caught:
                next_status(status, action, facts)
            assert (caught.value.status, caught.value.action) == (status, action)
            assert caught.value.reason


def test_every_consistent_state_is_reachable_and_moves_keep_tickets_consistent() -> None:
    start = ("new", Facts())
    seen = {start}
    todo = [start]
    while todo:
        status, facts = todo.pop()
        for action in ACTIONS:
            try:
                outcome = apply(status, action, facts)
            except TransitionNotAllowed:
                continue
            assert consistency_error(outcome.status, outcome.facts) is None, (status, action, outcome)
            state = (outcome.status, outcome.facts)
            if state not in seen:
                seen.add(state)
                todo.append(state)
    assert seen == set(consistent_states())


def test_response_before_handling_then_close() -> None:
    status, facts = "new", Facts()
    for action, expected in [
        ("acknowledge", "acknowledged"),
        ("respond", "responded"),
        ("handle", "handled"),
        ("close", "closed"),
    ]:
        outcome = apply(status, action, facts)
        status, facts = outcome.status, outcome.facts
        assert status == expected
    assert facts.handled
    assert facts.responded


def test_close_needs_both_stages() -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        next_status("handled", "close", Facts(handled=True))
    assert caught.value.reason == "尚未回应"
    assert "不能办结" in str(caught.value)
    with pytest.raises(TransitionNotAllowed, match="尚未办理"):
        next_status("responded", "close", Facts(responded=True))


def test_reassign_and_reopen_clear_the_stages_but_keep_the_escalation() -> None:
    busy = Facts(handled=True, responded=False, extension_pending=True, escalated=True)
    assert apply("handled", "reassign", busy).facts == Facts(escalated=True)
    reopened = apply("closed", "reopen", Facts(handled=True, responded=True))
    assert reopened.status == "acknowledged"
    assert reopened.facts == Facts()
    with pytest.raises(TransitionNotAllowed):
        next_status(reopened.status, "close", reopened.facts)


def test_extension_requests_do_not_change_the_status() -> None:
    asked = apply("handled", "request_extension", Facts(handled=True))
    assert asked.status == "handled"
    assert asked.facts.extension_pending
    with pytest.raises(TransitionNotAllowed, match="已有待审批的延期申请"):
        apply("handled", "request_extension", asked.facts)
    decided = apply("handled", "approve_extension", asked.facts)
    assert decided == apply("handled", "reject_extension", asked.facts)
    assert not decided.facts.extension_pending


def test_escalate_marks_and_keeps_status() -> None:
    outcome = apply("acknowledged", "escalate", Facts())
    assert outcome.status == "acknowledged"
    assert outcome.facts.escalated


def test_inconsistent_or_unknown_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="inconsistent ticket"):
        next_status("closed", "reopen", Facts(handled=True))
    with pytest.raises(ValueError, match="unknown ticket action 'archive'"):
        next_status("new", "archive", Facts())
    with pytest.raises(ValueError, match="unknown ticket status 'done'"):
        next_status("done", "close", Facts())


def test_allowed_actions_per_role() -> None:
    facts = Facts()
    assert allowed_actions("new", facts, "department") == ["acknowledge", "return"]
    assert allowed_actions("acknowledged", facts, "department") == [
        "handle",
        "respond",
        "return",
        "request_extension",
    ]
    assert allowed_actions("acknowledged", facts, "officer") == ["reassign", "escalate"]
    assert allowed_actions("acknowledged", Facts(extension_pending=True), "officer") == [
        "reassign",
        "escalate",
        "approve_extension",
        "reject_extension",
    ]
    assert allowed_actions("closed", Facts(handled=True, responded=True), "officer") == ["reopen"]
    assert allowed_actions("returned", facts, "department") == []
    for status, state in consistent_states():
        assert allowed_actions(status, state, "admin") == allowed_actions(status, state, "officer")
        assert allowed_actions(status, state, "leader") == []
        assert allowed_actions(status, state, "auditor") == []


def test_require_role() -> None:
    require_role("department", "handle")
    require_role("admin", "reassign")
    with pytest.raises(RoleNotAllowedError, match="舆情专员无权办理"):
        require_role("officer", "handle")
    with pytest.raises(RoleNotAllowedError):
        require_role("leader", "escalate")


def test_markdown_table_has_one_row_per_move() -> None:
    text = transitions_markdown()
    lines = text.strip().splitlines()
    assert lines[0].startswith("| 当前状态 | 操作 |")
    rows = lines[2:]
    assert len(rows) == len(MOVES)
    assert all(row.count("|") == 7 for row in rows)
    assert "| `handled` 已办理 | `close` 办结 | 已办理，已回应 | `closed` 已办结 |" in text
    assert "| `closed` 已办结 | `reopen` 重新打开 | — | `acknowledged` 已签收 |" in text
