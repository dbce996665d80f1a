"""Optimistic locking under real concurrency: threads with their own connections race on one ticket."""

from __future__ import annotations

import threading
import time

import pytest

from service.db import Database
from service.ledger.actions import act
from service.ledger.errors import StaleVersion, TicketNotFound
from service.ledger.service import get
from service.ledger.transitions import TransitionNotAllowed
from tests.ledger.builders import ENV_USER, OFFICER, new_ticket

RACERS = 8


def _race(database_url: str, ticket_id: int, config, actions: list[str], first: str | None = None) -> list[str]:
    """Run ``actions`` at once, each on its own connection; one outcome per racer, whatever happens.

    ``first`` (an action) is done and committed before the others are released, the way a loaded machine
    may schedule it. A racer's unexpected exception is recorded as its outcome, so it can never vanish with
    its thread and leave the count short.
    """
    databases = [Database(database_url) for _ in actions]
    start = threading.Barrier(len(actions))
    outcomes: list[str] = []
    lock = threading.Lock()
    first_done = threading.Event()

    def race(i: int) -> None:
        principal = ENV_USER if actions[i] in ("acknowledge", "return") else OFFICER
        try:
            start.wait(timeout=30)
            if first is not None and actions[i] != first:
                first_done.wait(timeout=30)
            with databases[i].session() as s:
                act(
                    s,
                    ticket_id,
                    principal,
                    actions[i],
                    version=1,
                    note="并发测试",
                    department="water",
                    config=config,
                )
            result = "won"
        except (StaleVersion, TransitionNotAllowed):
            result = "conflict"
        except TicketNotFound:
            # A department user racing a reassign that committed first: the ticket has left its department,
            # and another department's ticket is "not found" to it (the 404 of the interface).
            result = "gone"
        except Exception as exc:  # reported in the assertion below, never lost with its thread
            result = f"error: {exc!r}"
        finally:
            if actions[i] == first:
                first_done.set()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for d in databases:
        d.dispose()
    assert len(outcomes) == len(actions), f"a racer did not finish: {outcomes}"
    return outcomes


def _losses_allowed(winner_department: str) -> set[str]:
    # Losing to a reassign leaves the env user's ticket in another department: 404 for it, not 409.
    return {"conflict", "gone"} if winner_department != "env" else {"conflict"}


def test_exactly_one_of_many_concurrent_actions_wins(database_url, db, frozen, config) -> None:
    with db.session() as s:
        ticket_id = new_ticket(s, config).id
    outcomes = _race(database_url, ticket_id, config, ["acknowledge", "return", "escalate", "reassign"] * (RACERS // 4))
    with db.session() as s:
        ticket = get(s, ticket_id)
        assert ticket.version == 2
        # One entry per version: the losers left no trace in the timeline.
        assert [e.version for e in ticket.timeline] == [1, 2]
        department = ticket.department
    assert outcomes.count("won") == 1, outcomes
    assert set(outcomes) - {"won"} <= _losses_allowed(department), outcomes


def test_department_users_losing_to_a_reassign_are_told_it_is_gone(database_url, db, frozen, config) -> None:
    """The schedule that broke CI on a loaded machine: the reassign commits before the department users read."""
    with db.session() as s:
        ticket_id = new_ticket(s, config).id
    outcomes = _race(database_url, ticket_id, config, ["reassign", "acknowledge", "return", "escalate"], "reassign")
    assert sorted(outcomes) == ["conflict", "gone", "gone", "won"]
    with db.session() as s:
        ticket = get(s, ticket_id)
        assert (ticket.department, ticket.status, ticket.version) == ("water", "new", 2)


def test_a_writer_that_read_before_the_winner_committed_gets_a_conflict(database_url, db, frozen, config) -> None:
    """The version condition of the UPDATE itself, not only the early comparison, stops the second writer."""
    with db.session() as s:
        ticket_id = new_ticket(s, config).id
    other = Database(database_url)
    result: dict[str, object] = {}

    def second_writer() -> None:
        began = time.monotonic()
        try:
            with other.session() as s:
                # Reads version 1 (the winner has not committed), then waits on the winner's row lock.
                act(s, ticket_id, OFFICER, "escalate", version=1, config=config)
            result["outcome"] = "won"
        except StaleVersion as exc:
            result["outcome"] = exc
        result["waited"] = time.monotonic() - began

    thread = threading.Thread(target=second_writer)
    with db.session() as s:
        act(s, ticket_id, ENV_USER, "acknowledge", version=1, config=config)
        thread.start()
        # Long enough that the writer, even started late by a loaded machine, still waits 0.4 s at the lock.
        time.sleep(1.0)
    thread.join(30)
    other.dispose()
    assert isinstance(result["outcome"], StaleVersion)
    assert result["outcome"].current == 2
    # It got as far as the UPDATE and waited there for the winner's commit.
    assert result["waited"] >= 0.4
    with db.session() as s:
        ticket = get(s, ticket_id)
        assert (ticket.status, ticket.version, ticket.escalated) == ("acknowledged", 2, False)


def test_a_reassign_that_lost_to_the_same_reassign_is_told_to_reload(database_url, db, frozen, config) -> None:
    """The schedule that broke CI: two officers reassign to the same department from version 1; the second
    commits after the first and must get a conflict (reload), not “already in that department” (422)."""
    with db.session() as s:
        ticket_id = new_ticket(s, config).id
    with db.session() as s:
        act(s, ticket_id, OFFICER, "reassign", version=1, department="water", config=config)
    with db.session() as s, pytest.raises(StaleVersion) as lost:
        act(s, ticket_id, OFFICER, "reassign", version=1, department="water", config=config)
    assert (lost.value.current, lost.value.expected) == (2, 1)
