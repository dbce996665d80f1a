"""Related-event suggestions: "可能是同一事件" on a ticket, with the reason.

Reposts are grouped automatically (service/items/duplicates.py); reports of one event in other words —
a 12345 complaint and a news report about the same 化工厂异味 in the same street — are not copies, so
they are only suggested: an open ticket of the same department discovered within 72 hours that names
one of the ticket's places (district, town/street, community/village, road, estate; jieba with the
configured place dictionary) and shares a subject term (the rule terms its alerts highlighted). Officers
decide, and merge (并单) when it is the same event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, noload

from service.feed.models import Alert
from service.items.places import Place, gazetteer, region_of
from service.ledger.models import Ticket
from service.store.base import Store, StoreUnavailable

WINDOW = timedelta(hours=72)
CANDIDATES = 30
ITEMS_PER_TICKET = 3
# Finer places make a stronger reason: an estate or a road before a district.
_LEVEL_RANK = {"estate": 0, "road": 1, "community": 2, "town": 3, "district": 4}


class RelatedTicket(BaseModel):
    """One suggestion shown on a ticket."""

    ticket_id: int
    title: str
    status: str
    places: list[str]
    terms: list[str]
    reason: str


def _places(items: Iterable[Any]) -> dict[str, Place]:
    out: dict[str, Place] = {}
    for item in items:
        for place in gazetteer().extract(f"{item.title}\n{item.content}"):
            out.setdefault(place.name, place)
    return out


def _terms(session: Session, ticket_ids: list[int]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {t: set() for t in ticket_ids}
    rows = session.execute(select(Alert.ticket_id, Alert.snippets).where(Alert.ticket_id.in_(ticket_ids))).all()
    for ticket_id, snippets in rows:
        for snippet in snippets or []:
            for highlight in snippet.get("highlights", []):
                term = highlight.get("term")
                if term:
                    out[ticket_id].add(term)
    return out


def suggest(session: Session, store: Store, ticket: Ticket, texts: Mapping[str, Any]) -> list[RelatedTicket]:
    """Open tickets of the ticket's department, discovered within 72 hours, sharing a place and a term."""
    if ticket.merged_into is not None or not texts:
        return []
    own_places = _places(texts.values())
    if not own_places:
        return []
    others = list(
        session.scalars(
            select(Ticket)
            .options(noload(Ticket.timeline))
            .where(
                Ticket.department == ticket.department,
                Ticket.id != ticket.id,
                Ticket.merged_into.is_(None),
                Ticket.status != "closed",
                Ticket.discovered_at >= ticket.discovered_at - WINDOW,
                Ticket.discovered_at <= ticket.discovered_at + WINDOW,
            )
            .order_by(Ticket.discovered_at.desc())
            .limit(CANDIDATES)
        ).all()
    )
    if not others:
        return []
    terms = _terms(session, [ticket.id, *(t.id for t in others)])
    own_terms = terms.get(ticket.id, set())
    wanted = [link.item_id for t in others for link in t.items[:ITEMS_PER_TICKET]]
    try:
        stored = {i.id: i for i in store.get_many(wanted)}
    except StoreUnavailable:
        return []
    out: list[tuple[int, RelatedTicket]] = []
    for other in others:
        items = [stored[link.item_id] for link in other.items[:ITEMS_PER_TICKET] if link.item_id in stored]
        shared_places = sorted(
            (p for name, p in _places(items).items() if name in own_places), key=lambda p: _LEVEL_RANK[p.level]
        )
        shared_terms = sorted(own_terms & terms.get(other.id, set()))
        if not shared_places or not shared_terms:
            continue
        names = [p.name for p in shared_places]
        reason = f"同在{'、'.join(names[:3])}；都涉及{'、'.join(shared_terms[:5])}"
        out.append(
            (
                _LEVEL_RANK[shared_places[0].level],
                RelatedTicket(
                    ticket_id=other.id,
                    title=other.title,
                    status=other.status,
                    places=names,
                    terms=shared_terms,
                    reason=reason,
                ),
            )
        )
    out.sort(key=lambda pair: (pair[0], -len(pair[1].terms)))
    return [suggestion for _, suggestion in out]


UNKNOWN_REGION = "未识别地点"
REGION_TICKETS = 5000


def regions(store: Store, tickets: Iterable[Ticket]) -> list[dict[str, Any]]:
    """地域分布: tickets per region (the broadest place its first item names), busiest first.

    At most the first REGION_TICKETS tickets are read; the store being down counts them as unknown.
    """
    chosen = [t for t in tickets if t.items][:REGION_TICKETS]
    try:
        stored = {i.id: i for i in store.get_many([t.items[0].item_id for t in chosen])}
    except StoreUnavailable:
        stored = {}
    counts: dict[str, dict[str, int]] = {}
    for ticket in chosen:
        item = stored.get(ticket.items[0].item_id)
        text = f"{item.title}\n{item.content}" if item is not None else ticket.title
        region = region_of(gazetteer().extract(text)) or UNKNOWN_REGION
        row = counts.setdefault(region, {"count": 0, "open": 0})
        row["count"] += 1
        row["open"] += ticket.status != "closed"
    out = [{"region": r, **c} for r, c in counts.items()]
    out.sort(key=lambda r: (r["region"] == UNKNOWN_REGION, -r["count"], r["region"]))
    return out
