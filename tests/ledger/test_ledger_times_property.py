"""Times that make sense, whatever happens to a ticket (property-based, Hypothesis).

Random sequences of department and officer actions, public replies seen by the crawler (also dated
before the discovery, or only by day), reassignments, reopenings, extensions, severity changes and
clock jumps (backwards too). After every step: discovery ≤ 签收 ≤ 办理 ≤ 回应 ≤ 办结 in recorded order
(a reply dated before discovery is the one exception, and the ticket says 已在发现前回应), the
timeline never goes back in time, and no duration in the stats or the ledger summary is negative.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import clock
from service.exports.ledger_rows import row_from_ticket
from service.exports.summary import LedgerSummary
from service.ledger import transitions
from service.ledger.actions import act
from service.ledger.errors import InvalidInput, StaleVersion, TicketNotFound
from service.ledger.replies import record_public_reply
from service.ledger.schemas import TicketSummary
from service.ledger.service import get
from service.ledger.statistics import stats
from service.principal import Principal
from service.store.base import Item
from tests.ledger.builders import ENV_USER, OFFICER, T0, WATER_USER, new_ticket

pytestmark = pytest.mark.filterwarnings("ignore")
_numbers = itertools.count(1)

DEPARTMENT_USERS = {"env": ENV_USER, "water": WATER_USER}
DEPARTMENT_ACTIONS = ["acknowledge", "handle", "respond", "close", "return", "request_extension"]
OFFICER_ACTIONS = ["reassign", "escalate", "reopen", "approve_extension", "reject_extension"]

steps = st.one_of(
    st.tuples(st.just("department"), st.sampled_from(DEPARTMENT_ACTIONS)),
    st.tuples(st.just("officer"), st.sampled_from(OFFICER_ACTIONS)),
    # A reply on the website, dated relative to the discovery; by day only (00:00 local) or to the minute.
    st.tuples(st.just("reply"), st.integers(-72 * 60, 72 * 60), st.booleans()),
    st.tuples(st.just("severity"), st.sampled_from(["minor", "normal", "major", "critical"])),
    st.tuples(st.just("clock"), st.integers(-36 * 60, 96 * 60)),
)


def _stage_times_in_recorded_order(ticket) -> list[tuple[str, object]]:
    """(stage, time) of the stages met now, in the order their last recording appears on the timeline."""
    position = {}
    for index, entry in enumerate(ticket.timeline):
        position[entry.action] = index
    met = {"acknowledge": ticket.ack_met_at, "handle": ticket.handle_met_at, "respond": ticket.respond_met_at}
    recorded = [(position.get(stage, -1), stage, at) for stage, at in met.items() if at is not None]
    out = [(stage, at) for _, stage, at in sorted(recorded, key=lambda r: r[0])]
    if ticket.status == "closed":
        out.append(("close", max(e.at for e in ticket.timeline if e.action == "close")))
    return out


def check_invariants(session, ticket_id: int) -> None:
    ticket = get(session, ticket_id)
    flagged = ticket.respond_met_at is not None and ticket.respond_met_at < ticket.discovered_at
    latest = ticket.discovered_at
    for stage, at in _stage_times_in_recorded_order(ticket):
        if stage == "respond" and flagged:
            continue  # a reply already public when the item was found: its true time, and flagged
        assert at >= latest, f"{stage} at {at} before an earlier recorded time {latest}"
        latest = at
    times = [entry.at for entry in ticket.timeline]
    assert times == sorted(times), "the timeline goes back in time"
    view = TicketSummary.of(ticket, OFFICER, clock.now())
    assert view.replied_before_discovery is flagged
    if ticket.ack_met_at is None and ticket.status not in ("new", "returned"):
        assert view.acknowledge_waived
        assert view.overdue["acknowledge"] is False
    for row in stats(session, OFFICER):
        for key, value in row.items():
            if key.endswith("_hours") and value is not None:
                assert value >= 0, (key, value)
            if key.endswith("_rate") and value is not None:
                assert 0 <= value <= 1, (key, value)
    summary = LedgerSummary()
    summary.add(row_from_ticket(ticket, 1, clock.now()))
    hours = summary.total.avg_respond_hours
    assert hours is None or hours >= 0


def _step(session, frozen, config, ticket_id: int, step: tuple) -> None:
    ticket = get(session, ticket_id)
    kind = step[0]
    try:
        if kind == "department":
            action = step[1]
            user: Principal = DEPARTMENT_USERS.get(ticket.department, ENV_USER)
            kwargs = {}
            if action == "handle":
                kwargs["result"] = "已处理"
            if action == "respond":
                kwargs["response_url"] = "http://127.0.0.1:8801/reply.html"
            if action == "return":
                kwargs["note"] = "不属于本单位"
            if action == "request_extension":
                kwargs.update(note="需要现场核查", until=clock.now() + timedelta(days=20))
            act(session, ticket_id, user, action, config=config, **kwargs)
        elif kind == "officer":
            action = step[1]
            kwargs = {}
            if action == "reassign":
                kwargs["department"] = "water" if ticket.department == "env" else "env"
            act(session, ticket_id, OFFICER, action, config=config, **kwargs)
        elif kind == "reply":
            replied = ticket.discovered_at + timedelta(minutes=step[1])
            if step[2]:  # the website gives only the day
                local = clock.to_local(replied)
                replied = clock.ensure_aware(local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None))
            number = ticket.items[0].item_id.removeprefix("item-")
            item = Item(
                id=ticket.items[0].item_id,
                source="demo-12345",
                channel="hotline",
                url=f"http://127.0.0.1:8801/detail_{number}.html",
                title="工单",
                fetched_at=clock.now(),
                reply="已答复市民",
                replied_at=replied,
            )
            record_public_reply(session, item)
        elif kind == "severity":
            act(session, ticket_id, OFFICER, "change_severity", config=config, severity=step[1])
        elif kind == "clock":
            frozen.set(clock.now() + timedelta(minutes=step[1]))
    except (
        transitions.TransitionNotAllowed,
        transitions.RoleNotAllowedError,
        TicketNotFound,
        InvalidInput,
        StaleVersion,
    ):
        session.rollback()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(start_minutes=st.integers(0, 7 * 24 * 60), plan=st.lists(steps, min_size=1, max_size=10))
def test_ticket_times_stay_in_order_and_no_duration_is_negative(sqlite_db, frozen, config, start_minutes, plan):
    frozen.set(T0 + timedelta(minutes=start_minutes))
    with sqlite_db.session() as session:
        ticket_id = new_ticket(session, config, next(_numbers), policy=config.policy).id
    for step in plan:
        with sqlite_db.session() as session:
            _step(session, frozen, config, ticket_id, step)
        with sqlite_db.session() as session:
            check_invariants(session, ticket_id)


@pytest.fixture
def sqlite_db(tmp_path):
    from service.db import Database

    database = Database(f"sqlite:///{tmp_path / 'times.db'}")
    database.migrate()
    yield database
    database.dispose()


def test_a_reply_dated_before_discovery_is_flagged_and_counts_zero_hours(sqlite_db, frozen, config) -> None:
    """The issue's case: 签收 was set to the reply day at 00:00 and the stats averaged −31.8 h."""
    with sqlite_db.session() as session:
        ticket_id = new_ticket(session, config, next(_numbers), policy=config.policy).id
    with sqlite_db.session() as session:
        _step(session, frozen, config, ticket_id, ("reply", -3 * 24 * 60, True))
    with sqlite_db.session() as session:
        ticket = get(session, ticket_id)
        assert ticket.status == "responded"
        assert ticket.ack_met_at is None
        assert ticket.respond_met_at < ticket.discovered_at
        view = TicketSummary.of(ticket, OFFICER, clock.now())
        assert view.replied_before_discovery is True
        assert view.acknowledge_waived is True
        [row] = stats(session, OFFICER)
        assert row["respond_avg_hours"] == 0
        assert row["respond_on_time_rate"] == 1
        assert row["acknowledge_avg_hours"] is None
        assert row["replied_before_discovery"] == 1
        ledger_row = row_from_ticket(ticket, 1, clock.now())
        assert "已在发现前回应" in ledger_row.note
        summary = LedgerSummary()
        summary.add(ledger_row)
        assert summary.total.avg_respond_hours == 0
