"""Optimistic locking under real concurrency: threads with their own connections race on one ticket."""

from __future__ import annotations

import threading
import time

from service.db import Database
from service.tickets.service import StaleVersion, act, get
from service.tickets.transitions import TransitionNotAllowed
from tests.ledger.builders import ENV_USER, OFFICER, new_ticket

RACERS = 8


def test_exactly_one_of_many_concurrent_actions_wins(database_url, db, frozen, config) -> None:
    with db.session() as s:
        ticket_id = new_ticket(s, config).id
    # A Database per thread: separate pools, so every racer really holds its own connection.
    databases = [Database(database_url) for _ in range(RACERS)]
    start = threading.Barrier(RACERS)
    outcomes: list[str] = []
    lock = threading.Lock()
    actions = ["acknowledge", "return", "escalate", "reassign"] * (RACERS // 4)

    def race(i: int) -> None:
        principal = ENV_USER if actions[i] in ("acknowledge", "return") else OFFICER
        start.wait()
        try:
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
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for d in databases:
        d.dispose()
    assert sorted(outcomes) == ["conflict"] * (RACERS - 1) + ["won"]
    with db.session() as s:
        ticket = get(s, ticket_id)
        assert ticket.version == 2
        # One entry per version: the losers left no trace in the timeline.
        assert [e.version for e in ticket.timeline] == [1, 2]


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
        time.sleep(0.5)
    thread.join(30)
    other.dispose()
    assert isinstance(result["outcome"], StaleVersion)
    assert result["outcome"].current == 2
    # It got as far as the UPDATE and waited there for the winner's commit.
    assert result["waited"] >= 0.4
    with db.session() as s:
        ticket = get(s, ticket_id)
        assert (ticket.status, ticket.version, ticket.escalated) == ("acknowledged", 2, False)
