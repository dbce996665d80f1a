"""Related-event suggestions: "可能是同一事件" on a ticket, with the reason.

Reposts are grouped automatically (service/items/duplicates.py); reports of one event in other words —
a 12345 complaint and a news report about the same 化工厂异味 in the same street — are not copies, so
they are only suggested: an open ticket of the same department discovered within 72 hours that names
one of the ticket's places (district, town/street, community/village, road, estate; jieba with the
configured place dictionary) and shares a subject term (the rule terms its alerts highlighted); or a
ticket of another event when a later item is a repost of items of both. They are decided when items are
matched, stored on both tickets (``ticket_suggestions``) and pushed over the alert stream; reading a ticket
only checks which still stand. Officers decide, and merge (并单) when it is the same event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session, noload

from service import clock
from service.db_columns import insert_ignore_many
from service.items.places import Place, gazetteer
from service.ledger.alerts import TicketAlerts
from service.ledger.models import Ticket, TicketSuggestion
from service.ledger.service import resolve_merged
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
    # related: same place and subject term; same_event: a later item is a repost of items of both tickets.
    kind: str = "related"


# Places are read from the start of each text: complaints and reports name where first, and segmenting
# whole long texts for every ticket a burst opens would cost more than the rest of matching.
PLACE_CHARS = 400


def _places(items: Iterable[Any]) -> dict[str, Place]:
    out: dict[str, Place] = {}
    for item in items:
        for place in gazetteer().extract(f"{item.title}\n{(item.content or '')[:PLACE_CHARS]}"):
            out.setdefault(place.name, place)
    return out


# -- computed when items are matched, stored, read with the ticket -----------------------------------


@dataclass(frozen=True)
class SameEvent:
    """A matched item on ``ticket_id`` that is also a repost of an item of another event (``event_id``)."""

    ticket_id: int
    department: str
    event_id: str
    title: str
    reason: str


def record_at_match(
    session: Session,
    store: Store,
    created: Sequence[int],
    texts: Mapping[str, Any],
    same_event: Sequence[SameEvent] = (),
    *,
    alerts: TicketAlerts,
    places: PlacesCache | None = None,
) -> list[TicketSuggestion]:
    """Suggestions for tickets a matching batch opened, and for events a repost links; stored on both tickets.

    Run in the batch's transaction after its alerts are written (their highlighted terms are the subject
    terms). Returns the new rows, which the alert stream pushes to whoever watches either ticket. ``places``
    carries the tickets' places from one batch to the next of a matching run (segmented once per run).
    """
    now = clock.now()
    rows: dict[tuple[int, int, str], dict[str, Any]] = {}

    def pair(a: int, b: int, department: str, kind: str, reason: str, places: list[str], terms: list[str]) -> None:
        for one, other in ((a, b), (b, a)):
            rows.setdefault(
                (one, other, kind),
                {
                    "ticket_id": one,
                    "other_id": other,
                    "department": department,
                    "kind": kind,
                    "reason": reason,
                    "places": places,
                    "terms": terms,
                    "created_at": now,
                },
            )

    # One row per pair and kind: a pair first related by place and term can later be linked by a repost of
    # both (the stronger reason, shown first).
    for link in same_event:
        found = session.scalar(
            select(Ticket.id).where(Ticket.event_key == link.event_id, Ticket.department == link.department)
        )
        if found is None:
            continue
        other_id = resolve_merged(session, [found]).get(found, found)
        other = session.get(Ticket, other_id)
        if other is None or other_id == link.ticket_id or other.status == "closed" or other.merged_into is not None:
            continue
        reason = f"条目《{link.title[:40]}》同时是这两张工单中条目的转载（{link.reason}），可能是同一事件，请确认后并单"
        pair(link.ticket_id, other_id, link.department, "same_event", reason, [], [])
    for a, b, department, suggestion in _related_batch(session, store, created, texts, alerts, places):
        pair(a, b, department, "related", suggestion.reason, suggestion.places, suggestion.terms)
    if not rows:
        return []
    inserted = insert_ignore_many(
        session,
        TicketSuggestion.__table__,
        list(rows.values()),
        ["ticket_id", "other_id", "kind"],
        returning=("id", "ticket_id", "other_id", "kind"),
    )
    return [TicketSuggestion(id=r.id, **rows[(r.ticket_id, r.other_id, r.kind)]) for r in inserted]


def _related_batch(
    session: Session,
    store: Store,
    created: Sequence[int],
    texts: Mapping[str, Any],
    alerts: TicketAlerts,
    cache: PlacesCache | None = None,
) -> list[tuple[int, int, str, RelatedTicket]]:
    """Related tickets of all tickets a batch opened at once: a few statements, whatever the batch size.

    Open tickets of the same department discovered within 72 hours that name one of the ticket's places and
    share a subject term (the rule terms its alerts highlighted).

    The candidates are the open tickets of the batch's departments in the window (the newest ones, capped);
    places are extracted once per ticket.
    """
    new, others = _batch_and_candidates(session, created)
    everyone = new + others
    if len(everyone) < 2:
        return []
    ids = [t.id for t in everyone]
    terms: dict[int, set[str]] = {}
    for start in range(0, len(ids), 500):
        terms.update(alerts.subject_terms(session, ids[start : start + 500]))
    cache = {} if cache is None else cache
    unknown = [t for t in others if _places_key(t) not in cache]
    places = _PlacesOf({**_stored_texts(store, unknown, texts), **texts}, cache)
    out: list[tuple[int, int, str, RelatedTicket]] = []
    for ticket in new:
        for other in everyone:
            suggestion = _suggestion(ticket, other, terms, places)
            if suggestion is not None:
                out.append((ticket.id, other.id, ticket.department, suggestion))
    return out


def _batch_and_candidates(session: Session, created: Sequence[int]) -> tuple[list[Ticket], list[Ticket]]:
    """The tickets the batch opened, and the open tickets of their departments within the window around them."""
    if not created:
        return [], []
    new = list(
        session.scalars(select(Ticket).options(noload(Ticket.timeline)).where(Ticket.id.in_(list(created)))).all()
    )
    if not new:
        return [], []
    departments = {t.department for t in new}
    others = session.scalars(
        select(Ticket)
        .options(noload(Ticket.timeline))
        .where(
            Ticket.department.in_(departments),
            Ticket.merged_into.is_(None),
            Ticket.status != "closed",
            Ticket.discovered_at >= min(t.discovered_at for t in new) - WINDOW,
            Ticket.discovered_at <= max(t.discovered_at for t in new) + WINDOW,
            Ticket.id.not_in([t.id for t in new]),
        )
        .order_by(Ticket.discovered_at.desc())
        .limit(CANDIDATES * len(departments))
    ).all()
    return new, list(others)


def _stored_texts(store: Store, tickets: Sequence[Ticket], texts: Mapping[str, Any]) -> dict[str, Any]:
    """The first items of ``tickets`` not already in ``texts``, read from the store ({} while it is down)."""
    wanted = [link.item_id for t in tickets for link in t.items[:ITEMS_PER_TICKET] if link.item_id not in texts]
    if not wanted:
        return {}
    try:
        return {i.id: i for i in store.get_many(wanted)}
    except StoreUnavailable:
        return {}


# A ticket's places by the ticket and its first items (a ticket that gains a first item is segmented again).
PlacesCache = dict[tuple[int, tuple[str, ...]], dict[str, Place]]


def _places_key(ticket: Ticket) -> tuple[int, tuple[str, ...]]:
    return ticket.id, tuple(link.item_id for link in ticket.items[:ITEMS_PER_TICKET])


class _PlacesOf:
    """Places named by a ticket's first items, segmented once and only when asked (the cheap term test first).

    In a burst the same open tickets are candidates of every batch: the cache, kept for the matching run,
    segments each of them once, not once per batch."""

    def __init__(self, known: Mapping[str, Any], cache: PlacesCache) -> None:
        self.known = known
        self.cache = cache
        self.partial: PlacesCache = {}  # some text unreadable now (store down): kept for this batch only

    def __call__(self, ticket: Ticket) -> dict[str, Place]:
        key = _places_key(ticket)
        found = self.cache.get(key, self.partial.get(key))
        if found is None:
            linked = [self.known[item_id] for item_id in key[1] if item_id in self.known]
            found = _places(linked)
            (self.cache if len(linked) == len(key[1]) else self.partial)[key] = found
        return found


def _suggestion(
    ticket: Ticket, other: Ticket, terms: Mapping[int, set[str]], places_of: _PlacesOf
) -> RelatedTicket | None:
    """``other`` as a suggestion on ``ticket`` when both are of one department within the window, share a subject
    term and name a common place; None otherwise."""
    if other.id == ticket.id or other.department != ticket.department:
        return None
    if abs(other.discovered_at - ticket.discovered_at) > WINDOW:
        return None
    shared_terms = sorted(terms.get(ticket.id, set()) & terms.get(other.id, set()))
    if not shared_terms or not (own_places := places_of(ticket)):
        return None
    shared_places = sorted(
        (p for name, p in places_of(other).items() if name in own_places), key=lambda p: _LEVEL_RANK[p.level]
    )
    if not shared_places:
        return None
    names = [p.name for p in shared_places]
    return RelatedTicket(
        ticket_id=other.id,
        title=other.title,
        status=other.status,
        places=names,
        terms=shared_terms,
        reason=f"同在{'、'.join(names[:3])}；都涉及{'、'.join(shared_terms[:5])}",
    )


def backfill_recent(session: Session, store: Store, alerts: TicketAlerts) -> int:
    """Suggestions for open tickets of the last 72 hours that have none stored (opened before suggestions were
    decided at match time, or by a matching run that stopped between its two transactions); how many rows.

    Run by ``yuqing init``: only tickets inside the window can be related, so the work is bounded by a few
    days of tickets, and re-running it only re-checks tickets that still have no suggestion.
    """
    since = clock.now() - WINDOW
    have = select(TicketSuggestion.ticket_id)
    tickets = list(
        session.scalars(
            select(Ticket)
            .options(noload(Ticket.timeline))
            .where(
                Ticket.discovered_at >= since,
                Ticket.status != "closed",
                Ticket.merged_into.is_(None),
                Ticket.id.not_in(have),
            )
        ).all()
    )
    if not tickets:
        return 0
    wanted = [link.item_id for t in tickets for link in t.items[:ITEMS_PER_TICKET]]
    try:
        texts = {i.id: i for i in store.get_many(wanted)}
    except StoreUnavailable:
        return 0
    return len(record_at_match(session, store, [t.id for t in tickets], texts, alerts=alerts))


def stored(session: Session, ticket: Ticket) -> list[RelatedTicket]:
    """The suggestions recorded for ``ticket`` whose other ticket is still open on its own; strongest first."""
    if ticket.merged_into is not None:
        return []
    rows = session.execute(
        select(TicketSuggestion, Ticket.title, Ticket.status)
        .join(Ticket, Ticket.id == TicketSuggestion.other_id)
        .where(
            TicketSuggestion.ticket_id == ticket.id,
            Ticket.merged_into.is_(None),
            Ticket.status != "closed",
        )
        .order_by(TicketSuggestion.id)
    ).all()
    out = [
        RelatedTicket(
            ticket_id=s.other_id,
            title=title,
            status=status,
            places=list(s.places or []),
            terms=list(s.terms or []),
            reason=s.reason,
            kind=s.kind,
        )
        for s, title, status in rows
    ]
    # One entry per other ticket: a repost of both is the stronger reason.
    out.sort(key=lambda r: r.kind != "same_event")
    unique: dict[int, RelatedTicket] = {}
    for r in out:
        unique.setdefault(r.ticket_id, r)
    return list(unique.values())


def suggestions_after(session: Session, principal: Any, after: int, limit: int = 100) -> list[dict[str, Any]]:
    """Suggestions recorded after row ``after`` that ``principal`` may see, oldest first (for the alert stream).

    Each is ``{"id", "ticket_id", "other_id", "kind", "reason", "places", "terms"}``; department users see
    their own department's, auditors none. The reason may quote an item's title: masked by the caller.
    """
    stmt = select(TicketSuggestion).where(TicketSuggestion.id > after)
    if not principal.sees_everything:
        if principal.role != "department" or not principal.department:
            return []
        stmt = stmt.where(TicketSuggestion.department == principal.department)
    rows = session.scalars(stmt.order_by(TicketSuggestion.id).limit(limit)).all()
    return [
        {
            "id": r.id,
            "ticket_id": r.ticket_id,
            "other_id": r.other_id,
            "kind": r.kind,
            "reason": r.reason,
            "places": list(r.places or []),
            "terms": list(r.terms or []),
        }
        for r in rows
    ]


def newest_suggestion(session: Session) -> int:
    """The id of the newest suggestion (0 when none): where a new stream starts."""
    return session.scalar(select(func.max(TicketSuggestion.id))) or 0
