"""The action table: each action of the vocabulary has its one handler; lists filter on lateness."""

from __future__ import annotations

from datetime import timedelta

from service.ledger import transitions
from service.ledger.actions import ACTION_TABLE, act
from service.ledger.service import list_tickets
from tests.ledger.builders import ENV_USER, OFFICER, new_ticket


def test_every_action_of_the_vocabulary_has_exactly_one_handler() -> None:
    # Every status move of the transition table, and re-grading (the one action that moves no status).
    assert sorted(ACTION_TABLE) == sorted([*transitions.ACTIONS, "change_severity"])
    assert set(transitions.ACTIONS) == set(transitions.ACTION_LABELS) == set(transitions.ACTION_ROLES)
    assert [name for name, handler in ACTION_TABLE.items() if not handler.moves_status] == ["change_severity"]
    handlers = [handler.apply for handler in ACTION_TABLE.values()]
    assert len({id(h) for h in handlers}) == len(handlers), "two actions share one handler"


def test_the_list_without_overdue_tickets_keeps_those_in_time(db, frozen, config) -> None:
    """overdue=false lists the tickets with no stage late (it once listed none: unmet stages read as NULL)."""
    with db.session() as s:
        late = new_ticket(s, config, 1)
        frozen.advance(timedelta(days=3))  # past the acknowledge and handle deadlines of ticket 1
        in_time = new_ticket(s, config, 2)
        done = new_ticket(s, config, 3)
        act(s, done.id, ENV_USER, "acknowledge", config=config)
        s.commit()
        overdue_ids = [t.id for t in list_tickets(s, OFFICER, overdue_only=True)[0]]
        in_time_ids = sorted(t.id for t in list_tickets(s, OFFICER, overdue_only=False)[0])
    assert overdue_ids == [late.id]
    assert in_time_ids == sorted([in_time.id, done.id])
