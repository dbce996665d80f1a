"""Public replies found by the crawler: the respond stage of the tickets linking the item, at the reply's time.

A hotline or mailbox item whose page carries the official reply (答复) answers the tickets that link it;
media items carry no official reply. The scheduled sweep (service.ledger.scheduled) finds replies stored
before their item was linked, so the order of crawl and matching does not matter.
"""

from __future__ import annotations

from datetime import datetime

from loguru import logger
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.clock import ensure_aware
from service.ledger import transitions
from service.ledger.errors import StaleVersion
from service.ledger.models import Ticket, TicketItem
from service.ledger.records import recorded_now, save_change, text_or_none
from service.ledger.service import facts_of
from service.store.base import Item
from service.vocabulary import CHANNEL_LABELS

REPLY_CHANNELS = ("hotline", "mailbox")


def record_public_reply(session: Session, item: Item) -> list[int]:
    """Record a public reply found on ``item`` as the respond stage of the tickets linking it.

    The stage is met at the reply's time (``replied_at``, else when the item was fetched) with the
    item's URL as the response; a ticket not yet acknowledged goes straight to responded with no 签收
    (the acknowledge stage is waived). Returns the ids of the tickets updated. A ticket changed
    concurrently is left for the next sweep.
    """
    if not text_or_none(item.reply) or item.channel not in REPLY_CHANNELS:
        return []  # media items carry no official reply, whatever their text says
    replied_at = ensure_aware(item.replied_at or item.fetched_at)
    tickets = session.scalars(
        select(Ticket)
        .join(TicketItem, TicketItem.ticket_id == Ticket.id)
        .where(
            TicketItem.item_id == item.id,
            Ticket.responded.is_(False),
            Ticket.status.in_(("new", "acknowledged", "handled")),
        )
    ).all()
    updated = []
    for ticket in tickets:
        try:
            _record_reply_on(session, ticket, item, replied_at)
        except StaleVersion:
            logger.info("记录公开答复时工单 {} 被修改，巡检将重试", ticket.id)
            continue
        updated.append(ticket.id)
    return updated


def _record_reply_on(session: Session, ticket: Ticket, item: Item, replied_at: datetime) -> None:
    """回应 at the reply's time; no 签收 invented. A reply dated before discovery keeps its time (the
    ticket then shows 已在发现前回应); a later one never goes before a stage already recorded (a website
    often gives only the date)."""
    actor = "system:crawler"
    now = recorded_now(ticket)
    version = ticket.version
    facts = facts_of(ticket)
    status = ticket.status
    # In words an office reader knows (the ledger prints it); the source's config id is no such word.
    note = f"在{CHANNEL_LABELS.get(item.channel, '来源网站')}的公开页面发现答复"
    if replied_at >= ticket.discovered_at:
        replied_at = max([replied_at, *(t for t in (ticket.ack_met_at, ticket.handle_met_at) if t is not None)])
    outcome = transitions.public_reply(status, facts)
    save_change(
        session,
        ticket,
        version,
        {
            "status": outcome.status,
            "responded": True,
            "respond_met_at": replied_at,
            "response_url": item.url,
            "response_source": actor,
        },
        action="respond",
        actor=actor,
        at=now,
        from_status=status,
        to_status=outcome.status,
        note=note,
        response_url=item.url,
        detail={"item_id": item.id, "replied_at": replied_at.isoformat()},
    )


def tickets_waiting_for_reply(session: Session) -> dict[str, list[int]]:
    """item id -> ids of tickets that link it and still wait for a response (hotline/mailbox items)."""
    rows = session.execute(
        select(TicketItem.item_id, Ticket.id)
        .join(Ticket, TicketItem.ticket_id == Ticket.id)
        .where(
            Ticket.responded.is_(False),
            Ticket.status.in_(("new", "acknowledged", "handled")),
            or_(TicketItem.channel.in_(REPLY_CHANNELS), TicketItem.channel.is_(None)),
        )
    ).all()
    out: dict[str, list[int]] = {}
    for item_id, ticket_id in rows:
        out.setdefault(item_id, []).append(ticket_id)
    return out
