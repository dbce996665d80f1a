"""地域分布 is one GROUP BY over regions kept on the item links: same figures as reading ticket by ticket."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update

from service.items.places import gazetteer, region_of
from service.ledger.merging import merge
from service.ledger.models import Ticket, TicketItem
from service.ledger.regions import UNKNOWN_REGION, fill_regions, region_counts
from service.ledger.service import list_tickets
from service.store.base import Item, StoreUnavailable
from service.store.sqlite import SqliteStore
from tests.ledger.builders import ENV_USER, OFFICER, T0, new_ticket

TEXTS = {
    1: "河西区柳岸社区东边的化工厂夜里有异味。",
    2: "河西区滨江大道旁化工厂偷偷排污。",
    3: "城东区阳光花园小区旁的化工厂异味很重。",
    4: "某化工厂异味。",
    7: "城东区滨江路夜间施工噪音。",
    8: "河西区柳岸社区又有异味。",
}


def _reference(store: Any, tickets: list[Ticket]) -> list[dict[str, Any]]:
    """The former chart: every ticket loaded, its first item read from the store, counted in Python."""
    chosen = [t for t in tickets if t.items]
    try:
        stored = {i.id: i for i in store.get_many([t.items[0].item_id for t in chosen])}
    except StoreUnavailable:
        stored = {}
    counts: dict[str, dict[str, int]] = {}
    for ticket in chosen:
        item = stored.get(ticket.items[0].item_id)
        text = f"{item.title}\n{item.content}" if item is not None else ticket.title
        row = counts.setdefault(region_of(gazetteer().extract(text)) or UNKNOWN_REGION, {"count": 0, "open": 0})
        row["count"] += 1
        row["open"] += ticket.status != "closed"
    out = [{"region": r, **c} for r, c in counts.items()]
    out.sort(key=lambda r: (r["region"] == UNKNOWN_REGION, -r["count"], r["region"]))
    return out


class _DownStore:
    def get_many(self, item_ids: list[str]) -> list[Item]:
        raise StoreUnavailable("down for the test")


def _item(n: int) -> Item:
    return Item(
        id=f"item-{n}", source="demo-12345", channel="hotline", external_id=str(n), url=f"http://x/{n}",
        title=f"工单{n}", content=TEXTS[n], published_at=T0, fetched_at=T0,
    )  # fmt: skip


def test_regions_are_one_aggregation_with_the_figures_of_reading_each_ticket(db, config, frozen, tmp_path: Path):
    store = SqliteStore(tmp_path / "items.sqlite3")
    store.upsert([_item(n) for n in TEXTS])
    with db.session() as s:
        tickets = {n: new_ticket(s, config, n) for n in range(1, 8)}
        tickets[2].status = "closed"
        tickets[3].department = "water"
        tickets[5].title = "城东区阳光花园噪音投诉"  # its item is not in the store: the title decides
        tickets[6].discovered_at = T0 - timedelta(days=40)  # before the range
        tickets[8] = new_ticket(s, config, 8)
        tickets[8].merged_into = tickets[1].id  # 并单: counted as the ticket it was merged into
        bare = new_ticket(s, config, 9)
        s.flush()
        s.query(TicketItem).filter(TicketItem.ticket_id == bare.id).delete()
        # Ticket 7 gets a second item naming another district: the first item decides.
        s.add(TicketItem(ticket_id=tickets[7].id, item_id="item-1", source="demo-12345", attached_at=T0))
    span = {"date_from": date(2026, 2, 20), "date_to": date(2026, 3, 31)}

    def reference(principal=OFFICER, store=store) -> list[dict[str, Any]]:
        with db.session() as s:
            return _reference(store, list_tickets(s, principal, **span, page=1, size=100)[0])

    loaded: list[Ticket] = []

    def on_load(target: Ticket, context: object) -> None:
        loaded.append(target)

    event.listen(Ticket, "load", on_load)
    try:
        with db.session() as s:
            down = region_counts(s, _DownStore(), OFFICER, **span)  # counted from titles, nothing kept
        with db.session() as s:
            first = region_counts(s, store, OFFICER, **span)  # works the regions out and keeps them
        with db.session() as s:
            again = region_counts(s, store, OFFICER, **span)  # one GROUP BY over the kept regions
            own = region_counts(s, store, ENV_USER, **span)
    finally:
        event.remove(Ticket, "load", on_load)
    assert loaded == []  # the former chart loaded up to 5,000 tickets as objects
    assert down == reference(store=_DownStore())
    assert first == again == reference()
    assert first == [
        {"region": "城东区", "count": 3, "open": 3},
        {"region": "河西区", "count": 2, "open": 1},
        {"region": UNKNOWN_REGION, "count": 1, "open": 1},
    ]
    assert own == reference(ENV_USER)
    assert sum(r["count"] for r in own) == 5  # water's ticket is not env's
    with db.session() as s:
        kept = dict(
            s.execute(select(TicketItem.item_id, TicketItem.region).where(TicketItem.region.is_not(None))).all()
        )
    assert kept["item-1"] == "河西区"
    # What yuqing init does after an upgrade: every ticket's region worked out; the chart then needs no store.
    with db.session() as s:
        s.execute(update(TicketItem).values(region=None))
        s.execute(update(Ticket).values(region=None))
    with db.session() as s:
        assert fill_regions(s, store) == 7  # every unmerged ticket with an item (1-7), in range or not
    with db.session() as s:
        assert region_counts(s, _DownStore(), OFFICER, **span) == first
    # A merge moving an older link onto a ticket makes that link its first item: the chart follows.
    with db.session() as s:
        merge(s, tickets[4].id, [(tickets[1].id, None)], OFFICER)
    with db.session() as s:
        after = region_counts(s, store, OFFICER, **span)
    assert after == reference()
    assert {"region": UNKNOWN_REGION, "count": 1, "open": 1} not in after  # ticket 4 now names 河西区
