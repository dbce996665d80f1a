"""Ticket actions through the ledger service: the move table, roles, departments, deadlines, versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.ledger import transitions
from service.ledger.actions import act
from service.ledger.errors import InvalidInput, StaleVersion, TicketNotFound
from service.ledger.service import ItemRef, facts_of, get, open_or_attach
from service.ledger.transitions import RoleNotAllowedError, TransitionNotAllowed
from tests.ledger.builders import ADMIN, AUDITOR, ENV_USER, LEADER, OFFICER, T0, WATER_USER, make_config, new_ticket

URL = "https://www.example.gov.cn/reply/1.html"
DEPARTMENT_ACTIONS = {a for a, roles in transitions.ACTION_ROLES.items() if "department" in roles}
# Input each action needs to be valid, so that only state, role and time decide.
INPUT = {
    "handle": {"result": "已责令停产整改"},
    "respond": {"response_url": URL},
    "return": {"note": "不属于本单位职责"},
    "reassign": {"department": "water"},
    "request_extension": {"note": "需第三方检测", "until": T0 + timedelta(days=20)},
}
# How to bring a fresh ticket into each status, as (principal, action) steps.
PATHS = {
    "new": [],
    "acknowledged": [(ENV_USER, "acknowledge")],
    "handled": [(ENV_USER, "acknowledge"), (ENV_USER, "handle")],
    "responded": [(ENV_USER, "acknowledge"), (ENV_USER, "respond")],
    "closed": [(ENV_USER, "acknowledge"), (ENV_USER, "handle"), (ENV_USER, "respond"), (ENV_USER, "close")],
    "returned": [(ENV_USER, "return")],
}


def do(session, ticket_id, principal, action, config, **extra):
    return act(session, ticket_id, principal, action, config=config, **{**INPUT.get(action, {}), **extra})


def ticket_in(session, config, status: str, n: int):
    ticket = new_ticket(session, config, n)
    for principal, action in PATHS[status]:
        ticket = do(session, ticket.id, principal, action, config)
    assert ticket.status == status
    return ticket


def test_the_whole_life_of_a_ticket(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        assert (ticket.status, ticket.version) == ("new", 1)
        frozen.advance(timedelta(minutes=30))
        ticket = do(s, ticket.id, ENV_USER, "acknowledge", config, version=1)
        frozen.advance(timedelta(hours=5))
        ticket = do(s, ticket.id, ENV_USER, "respond", config, version=2, note="已在网站公开答复")
        ticket = do(s, ticket.id, ENV_USER, "handle", config, version=3)
        ticket = do(s, ticket.id, ENV_USER, "close", config, version=4)
    with db.session() as s:
        ticket = get(s, ticket.id)
        assert ticket.status == "closed"
        assert ticket.version == 5
        assert ticket.ack_met_at == T0 + timedelta(minutes=30)
        assert ticket.respond_met_at == ticket.handle_met_at == T0 + timedelta(hours=5, minutes=30)
        assert ticket.response_url == URL
        assert ticket.result == "已责令停产整改"
        rows = [(e.action, e.actor, e.from_status, e.to_status, e.version) for e in ticket.timeline]
        assert rows == [
            ("create", "system:matching", None, "new", 1),
            ("acknowledge", "env-user", "new", "acknowledged", 2),
            ("respond", "env-user", "acknowledged", "responded", 3),
            ("handle", "env-user", "responded", "handled", 4),
            ("close", "env-user", "handled", "closed", 5),
        ]
        assert ticket.timeline[2].note == "已在网站公开答复"


def test_every_action_in_every_status_follows_the_table(db, frozen, config) -> None:
    n = 0
    with db.session() as s:
        for status in transitions.STATUSES:
            for action in transitions.ACTIONS:
                n += 1
                ticket = ticket_in(s, config, status, n)
                before = ticket.version  # the session hands back the same, refreshed object
                principal = ENV_USER if action in DEPARTMENT_ACTIONS else OFFICER
                allowed = action in transitions.allowed_actions(status, facts_of(ticket), principal.role)
                if allowed:
                    after = do(s, ticket.id, principal, action, config)
                    assert after.version == before + 1, (status, action)
                    assert after.timeline[-1].action == action
                else:
                    with pytest.raises(TransitionNotAllowed):
                        do(s, ticket.id, principal, action, config)
                    assert get(s, ticket.id).version == before, (status, action)


def test_roles_that_may_never_do_an_action_are_refused(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        for action in transitions.ACTIONS:
            wrong = [LEADER] + ([OFFICER, ADMIN] if action in DEPARTMENT_ACTIONS else [ENV_USER])
            for principal in wrong:
                with pytest.raises(RoleNotAllowedError):
                    do(s, ticket.id, principal, action, config)
            # The auditor sees no ticket at all: for it they do not exist.
            with pytest.raises(TicketNotFound):
                do(s, ticket.id, AUDITOR, action, config)
        assert get(s, ticket.id).version == 1


def test_a_department_cannot_see_or_touch_another_departments_ticket(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        with pytest.raises(TicketNotFound):
            do(s, ticket.id, WATER_USER, "acknowledge", config)
        with pytest.raises(TicketNotFound):
            get(s, ticket.id, WATER_USER)
        with pytest.raises(TicketNotFound):
            get(s, 999_999, OFFICER)
        assert get(s, ticket.id, ENV_USER).id == ticket.id


def test_a_stale_version_is_a_conflict_and_changes_nothing(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        do(s, ticket.id, ENV_USER, "acknowledge", config, version=1)
        with pytest.raises(StaleVersion, match="已被他人修改"):
            do(s, ticket.id, ENV_USER, "handle", config, version=1)
        after = get(s, ticket.id)
        assert (after.status, after.version, len(after.timeline)) == ("acknowledged", 2, 2)


BAD_INPUT = [
    ("respond", {"response_url": None}, "response_url"),
    ("respond", {"response_url": "javascript:alert(1)"}, "response_url"),
    ("handle", {"result": None, "note": "  "}, "result"),
    ("request_extension", {"until": None}, "until"),
    ("request_extension", {"note": None}, "note"),
    ("reassign", {"department": None}, "department"),
    ("reassign", {"department": "nowhere"}, "department"),
    ("reassign", {"department": "env"}, "department"),
]


def test_missing_or_bad_input_is_refused_with_the_field(db, frozen, config) -> None:
    with db.session() as s:
        ticket = ticket_in(s, config, "acknowledged", 1)
        for action, bad, field in BAD_INPUT:
            principal = OFFICER if action == "reassign" else ENV_USER
            with pytest.raises(InvalidInput) as info:
                do(s, ticket.id, principal, action, config, **bad)
            assert info.value.field == field, (action, bad)
        assert get(s, ticket.id).version == 2


def test_deadlines_on_creation_follow_the_sla_policy(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config, severity="normal")
        # Monday 10:00 (+08): acknowledge 4h; handle 3wd = Thursday end of day; respond 5wd = next Monday.
        assert ticket.ack_due == T0 + timedelta(hours=4)
        assert ticket.handle_due == datetime(2026, 3, 5, 15, 59, 59, tzinfo=UTC)
        assert ticket.respond_due == datetime(2026, 3, 9, 15, 59, 59, tzinfo=UTC)
        critical = new_ticket(s, config, 2, severity="critical")
        assert critical.ack_due - T0 == timedelta(minutes=30)
        assert critical.respond_due - T0 == timedelta(hours=24)


def test_one_ticket_per_event_and_department(db, frozen, config) -> None:
    with db.session() as s:
        first = new_ticket(s, config)
        again, created = open_or_attach(
            s,
            title="同一事件",
            severity="normal",
            department="env",
            event_id="ev-1",
            items=[ItemRef(item_id="item-9", source="demo-mailbox", channel="mailbox", title="来信")],
            policy=config.policy,
        )
        assert not created
        assert again.id == first.id
        assert [i.item_id for i in again.items] == ["item-1", "item-9"]
        assert again.timeline[-1].action == "attach_item"
        other, created = open_or_attach(
            s, title="同一事件", severity="normal", department="water", event_id="ev-1", policy=config.policy
        )
        assert created
        assert other.id != first.id


def test_reassignment_restarts_acknowledge_only(db, frozen, config) -> None:
    with db.session() as s:
        ticket = ticket_in(s, config, "acknowledged", 1)
        frozen.advance(timedelta(hours=2))
        moved = do(s, ticket.id, OFFICER, "reassign", config, note="属水务局职责")
        assert (moved.status, moved.department) == ("new", "water")
        assert moved.ack_met_at is None
        assert moved.ack_due == T0 + timedelta(hours=6)
        assert moved.handle_due == ticket.handle_due
        assert moved.respond_due == ticket.respond_due
        assert moved.timeline[-1].detail == {"from_department": "env", "to_department": "water"}
        # Now it is water's: env no longer sees it.
        with pytest.raises(TicketNotFound):
            do(s, ticket.id, ENV_USER, "acknowledge", config)
        assert do(s, ticket.id, WATER_USER, "acknowledge", config).status == "acknowledged"


def test_return_only_within_the_window_and_back_to_the_same_department(db, frozen) -> None:
    config = make_config(return_window_hours=24)
    with db.session() as s:
        late = new_ticket(s, config, 1)
        early = new_ticket(s, config, 2)
        frozen.advance(timedelta(hours=23))
        returned = do(s, early.id, ENV_USER, "return", config)
        assert returned.status == "returned"
        frozen.advance(timedelta(hours=2))
        with pytest.raises(TransitionNotAllowed, match="24 小时内"):
            do(s, late.id, ENV_USER, "return", config)
        # The officer refuses the return: back to env, which acknowledges it anew.
        back = do(s, early.id, OFFICER, "reassign", config, department="env")
        assert (back.status, back.department) == ("new", "env")


def test_extension_requested_in_time_and_approved_moves_the_open_deadlines(db, frozen, config) -> None:
    with db.session() as s:
        ticket = ticket_in(s, config, "handled", 1)
        until = datetime(2026, 3, 20, 15, 59, 59, tzinfo=UTC)
        asked = do(s, ticket.id, ENV_USER, "request_extension", config, until=until)
        assert asked.extension_pending
        assert asked.handle_due == ticket.handle_due  # nothing moves before approval
        with pytest.raises(TransitionNotAllowed, match="已有待审批的延期申请"):
            do(s, ticket.id, ENV_USER, "request_extension", config, until=until)
        approved = do(s, ticket.id, OFFICER, "approve_extension", config)
        assert not approved.extension_pending
        assert approved.respond_due == until
        assert approved.handle_due == ticket.handle_due  # already met: an on-time record stays on time
        assert approved.timeline[-1].detail["stages"] == ["respond"]


def test_rejected_extension_keeps_the_deadlines(db, frozen, config) -> None:
    with db.session() as s:
        ticket = ticket_in(s, config, "acknowledged", 1)
        do(s, ticket.id, ENV_USER, "request_extension", config)
        rejected = do(s, ticket.id, OFFICER, "reject_extension", config, note="理由不充分")
        assert not rejected.extension_pending
        assert (rejected.handle_due, rejected.respond_due) == (ticket.handle_due, ticket.respond_due)


def test_no_extension_after_the_deadlines(db, frozen, config) -> None:
    with db.session() as s:
        ticket = ticket_in(s, config, "acknowledged", 1)
        frozen.set(ticket.respond_due + timedelta(minutes=1))
        with pytest.raises(TransitionNotAllowed, match="不能再申请延期"):
            do(s, ticket.id, ENV_USER, "request_extension", config, until=ticket.respond_due + timedelta(days=9))
        frozen.set(T0 + timedelta(hours=1))
        with pytest.raises(InvalidInput, match="晚于现有时限"):
            do(s, ticket.id, ENV_USER, "request_extension", config, until=T0 + timedelta(days=1))


def test_reopen_restarts_handle_and_respond_from_now(db, frozen, config) -> None:
    with db.session() as s:
        ticket = ticket_in(s, config, "closed", 1)
        frozen.advance(timedelta(days=10))
        reopened = do(s, ticket.id, OFFICER, "reopen", config, note="群众再次反映")
        assert reopened.status == "acknowledged"
        assert not reopened.handled
        assert not reopened.responded
        assert reopened.ack_due == ticket.ack_due
        assert reopened.handle_due == config.policy.deadline("normal", "handle", T0 + timedelta(days=10))


def test_escalate_marks_the_ticket_and_may_repeat(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        once = do(s, ticket.id, OFFICER, "escalate", config, note="请加快办理")
        twice = do(s, ticket.id, ADMIN, "escalate", config)
        assert once.escalated
        assert twice.escalated
        assert twice.status == "new"
        assert [e.action for e in twice.timeline].count("escalate") == 2


def test_severity_upgrade_recomputes_open_stages_from_discovery(db, frozen, config) -> None:
    with db.session() as s:
        ticket = ticket_in(s, config, "acknowledged", 1)
        upgraded = act(s, ticket.id, OFFICER, "change_severity", version=ticket.version, severity="critical")
        assert upgraded.severity == "critical"
        assert upgraded.ack_due == ticket.ack_due  # met: kept
        assert upgraded.respond_due == T0 + timedelta(hours=24)
        with pytest.raises(RoleNotAllowedError):
            act(s, ticket.id, ENV_USER, "change_severity", severity="minor")
