"""地域分布 as a database aggregation: tickets per region of their first item, any range, any ledger size.

A ticket's region is the broadest place its first item's stored text names (``region_of``; the ticket's
title when the store no longer has the item). It is worked out once per item and kept on the link
(``ticket_items.region``: items never change, and a link that moves with a merge or split keeps it), and
copied onto the ticket (``tickets.region``, cleared when a merge or split may change its first item), so
the chart is one GROUP BY over the tickets in range. Links not worked out yet (new tickets, a ledger from
before the column) are filled on the way, a batch at a time; while the item store is down they are
counted from the titles and left for a later request.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm import Session, aliased

from service.items.places import gazetteer, region_of
from service.ledger.models import Ticket, TicketItem
from service.ledger.service import discovered_within
from service.principal import Principal
from service.store.base import Store, StoreUnavailable

UNKNOWN_REGION = "未识别地点"
# Links filled per store read and UPDATE.
FILL_BATCH = 500


def region_of_text(text: str) -> str:
    """The region a text names, or UNKNOWN_REGION."""
    return region_of(gazetteer().extract(text)) or UNKNOWN_REGION


def _visible(principal: Principal, date_from: date | datetime | None, date_to: date | datetime | None) -> list[Any]:
    # The tickets list_tickets would show: a department user's own, merged tickets left out (并单).
    conditions: list[Any] = [Ticket.merged_into.is_(None), *discovered_within(date_from, date_to)]
    if principal.role == "department":
        conditions.append(Ticket.department == (principal.department or ""))
    return conditions


def _first_link() -> Any:
    """Join condition: a ticket with its first item's link (the lowest id, as ``Ticket.items`` orders them)."""
    other = aliased(TicketItem)
    first = select(func.min(other.id)).where(other.ticket_id == Ticket.id).correlate(Ticket).scalar_subquery()
    return TicketItem.id == first


def fill_regions(session: Session, store: Store) -> int:
    """Work out the region of every ticket that has none (``yuqing init`` after an upgrade, so the first
    chart of a large range does not do it); how many. The item store being down leaves them."""
    filled, _ = _fill(session, store, [Ticket.merged_into.is_(None)])
    return filled


def _fill(session: Session, store: Store, conditions: list[Any]) -> tuple[int, dict[str, dict[str, int]]]:
    """Work out the regions of tickets in range that have none; how many were kept, and what could not be
    kept, counted. A link's region is worked out once from the store; a ticket copies its first link's."""
    pending = session.execute(
        select(
            Ticket.id, Ticket.title, Ticket.status, TicketItem.id.label("link"), TicketItem.item_id, TicketItem.region
        )
        .select_from(Ticket)
        .join(TicketItem, _first_link())
        .where(*conditions, Ticket.region.is_(None))
    ).all()
    unstored: dict[str, dict[str, int]] = {}
    filled = 0
    links, tickets = TicketItem.__table__, Ticket.__table__
    for start in range(0, len(pending), FILL_BATCH):
        batch = pending[start : start + FILL_BATCH]
        unknown = [row for row in batch if row.region is None]
        try:
            stored = {i.id: i for i in store.get_many([row.item_id for row in unknown])} if unknown else {}
        except StoreUnavailable:
            # Counted from the titles this time, as before, but not kept: the items' own text decides later.
            for row in unknown:
                _count(unstored, region_of_text(row.title), row.status)
            batch = [row for row in batch if row.region is not None]
            unknown, stored = [], {}
        worked_out: dict[int, str] = {}
        for row in unknown:
            item = stored.get(row.item_id)
            worked_out[row.link] = region_of_text(f"{item.title}\n{item.content}" if item is not None else row.title)
        if worked_out:
            session.execute(
                update(links).where(links.c.id == bindparam("link")).values(region=bindparam("region")),
                [{"link": k, "region": v} for k, v in worked_out.items()],
            )
        if batch:
            session.execute(
                update(tickets).where(tickets.c.id == bindparam("ticket")).values(region=bindparam("region")),
                [{"ticket": row.id, "region": row.region or worked_out[row.link]} for row in batch],
            )
        filled += len(batch)
    return filled, unstored


def _count(
    counts: dict[str, dict[str, int]], region: str, status: str, tickets: int = 1, open_: int | None = None
) -> None:
    row = counts.setdefault(region, {"count": 0, "open": 0})
    row["count"] += tickets
    row["open"] += (status != "closed") if open_ is None else open_


def region_counts(
    session: Session,
    store: Store,
    principal: Principal,
    date_from: date | datetime | None = None,
    date_to: date | datetime | None = None,
) -> list[dict[str, Any]]:
    """地域分布 of the tickets ``principal`` may see discovered in the range: ``{"region", "count", "open"}``.

    Busiest first, 未识别地点 last; every ticket in range with an item counts, whatever the range's size.
    """
    if principal.role != "department" and not principal.sees_everything:
        return []
    conditions = _visible(principal, date_from, date_to)
    _, counts = _fill(session, store, conditions)
    grouped = session.execute(
        select(Ticket.region, func.count(), func.sum(case((Ticket.status != "closed", 1), else_=0)))
        .where(*conditions, Ticket.region.is_not(None))
        .group_by(Ticket.region)
    ).all()
    for region, tickets, open_ in grouped:
        _count(counts, region, "", tickets, int(open_ or 0))
    return ordered(counts.items())


def ordered(counts: Iterable[tuple[str, dict[str, int]]]) -> list[dict[str, Any]]:
    """Rows busiest first, then by name, 未识别地点 last."""
    out: list[dict[str, Any]] = [{"region": r, **c} for r, c in counts]
    out.sort(key=lambda r: (r["region"] == UNKNOWN_REGION, -r["count"], r["region"]))
    return out
