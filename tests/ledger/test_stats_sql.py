"""Ledger statistics are one SQL aggregation: same figures as counting ticket by ticket, no ticket loaded."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select

from service.ledger.actions import act
from service.ledger.models import Ticket
from service.ledger.service import overdue
from service.ledger.statistics import stats
from service.ledger.timing import elapsed
from tests.ledger.builders import ENV_USER, OFFICER, T0, WATER_USER, new_ticket


def _reference(tickets: list[Ticket], now) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for ticket in tickets:
        row = out.setdefault(ticket.department, {"total": 0, "overdue": 0, "ack_met": [], "discover": []})
        row["total"] += 1
        row["overdue"] += any(overdue(ticket, now).values())
        if ticket.ack_met_at is not None:
            row["ack_met"].append(elapsed(ticket.discovered_at, ticket.ack_met_at))
        if ticket.published_at is not None:
            row["discover"].append(elapsed(ticket.published_at, ticket.discovered_at))
    return out


def test_stats_match_a_ticket_by_ticket_count_without_loading_tickets(db, config, frozen) -> None:
    with db.session() as s:
        for n in range(6):
            new_ticket(s, config, n, severity="normal", policy=config.policy)
        for n in range(6, 9):
            new_ticket(s, config, n, department="water", severity="major", policy=config.policy)
    frozen.set(T0 + timedelta(hours=1, minutes=30))
    with db.session() as s:
        ids = list(s.scalars(select(Ticket.id).order_by(Ticket.id)))
        act(s, ids[0], ENV_USER, "acknowledge", config=config)
        act(s, ids[6], WATER_USER, "acknowledge", config=config)
    frozen.set(T0 + timedelta(hours=5))  # normal acknowledge (4h) now late for the other env tickets
    with db.session() as s:
        act(s, ids[1], ENV_USER, "acknowledge", config=config)
    loaded: list[Ticket] = []

    def on_load(target: Ticket, context: object) -> None:
        loaded.append(target)

    with db.session() as s:
        event.listen(Ticket, "load", on_load)
        try:
            rows = {r["department"]: r for r in stats(s, OFFICER)}
        finally:
            event.remove(Ticket, "load", on_load)
    assert loaded == []  # the old code loaded every ticket of the range as an object
    with db.session() as s:
        reference = _reference(list(s.scalars(select(Ticket))), T0 + timedelta(hours=5))
    assert set(rows) == {"env", "water"}
    env = rows["env"]
    assert env["total"] == reference["env"]["total"] == 6
    assert env["overdue"] == reference["env"]["overdue"] == 5
    assert env["by_status"]["acknowledged"] == 2
    assert env["acknowledge_on_time_rate"] == round(1 / 6, 4)  # one in time, one late, four open and late
    mean = sum(reference["env"]["ack_met"], timedelta()) / 2
    assert env["acknowledge_avg_hours"] == round(mean.total_seconds() / 3600, 2)
    assert rows["water"]["total"] == 3
    assert rows["water"]["acknowledge_on_time_rate"] == round(1 / 3, 4)  # major: 2h, two still open
    # A department user sees only its own row.
    with db.session() as s:
        assert [r["department"] for r in stats(s, ENV_USER)] == ["env"]
