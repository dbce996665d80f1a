"""A matching batch opens and attaches tickets in bulk, with the same outcome as one hit at a time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from service.ledger.batch import Opening, open_or_attach_many
from service.ledger.models import Ticket, TicketItem, TimelineEntry
from service.ledger.service import ItemRef
from tests.ledger.builders import T0, new_ticket


def opening(n: int, department: str = "env", event: str | None = None, published_hours: int = 0) -> Opening:
    return Opening(
        title=f"条目{n}",
        severity="normal",
        department=department,
        item=ItemRef(item_id=f"item-{n}", source="demo", channel="hotline", title=f"条目{n}"),
        discovered_at=T0,
        published_at=T0 - timedelta(hours=published_hours),
        event_id=event,
    )


def test_a_batch_opens_each_event_once_and_attaches_the_rest(db, config, frozen) -> None:
    with db.session() as s:
        existing = new_ticket(s, config, 99, event_id="ev-old").id
    batch = [
        opening(1, event="ev-a"),
        opening(2, event="ev-a", published_hours=5),  # same event: attached, earlier publication kept
        opening(3, department="water", event="ev-a"),  # another department: its own ticket
        opening(4),  # no event: the item stands for it
        opening(5, event="ev-old", published_hours=48),  # an event that already has a ticket
        opening(1, event="ev-a"),  # the same hit twice in a batch changes nothing
    ]
    with db.session() as s:
        out = open_or_attach_many(s, batch, policy=config.policy)
    assert [out[key][1] for key in (("ev-a", "env"), ("ev-a", "water"), ("item:item-4", "env"))] == [True] * 3
    assert out[("ev-old", "env")] == (existing, False)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 4
        env_a = s.get(Ticket, out[("ev-a", "env")][0])
        assert env_a.title == "条目1"
        assert env_a.published_at == T0 - timedelta(hours=5)
        assert sorted(i.item_id for i in env_a.items) == ["item-1", "item-2"]
        assert [e.action for e in env_a.timeline] == ["create", "attach_item"]
        assert env_a.timeline[1].detail == {"items": ["item-2"]}
        assert env_a.next_due_at == T0 + timedelta(hours=3)  # the acknowledge warning of a normal ticket
        old = s.get(Ticket, existing)
        assert old.published_at == T0 - timedelta(hours=48)
        assert [e.action for e in old.timeline] == ["create", "attach_item"]
    # Running the same batch again (a crash before the store marked it matched) adds nothing.
    with db.session() as s:
        again = open_or_attach_many(s, batch, policy=config.policy)
    assert not any(created for _, created in again.values())
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(TicketItem)) == 6
        assert s.scalar(select(func.count()).select_from(TimelineEntry)) == 6
