"""How the ledger writes: a new ticket's row, an item's link row, timeline entries and versioned changes.

Every change of a ticket row goes through :func:`save_change`: ``UPDATE tickets ... WHERE id = :id AND
version = :v`` and a check that exactly one row changed. Of N concurrent actions on the same version
exactly one wins; the others get :class:`StaleVersion` and their transaction writes nothing, so the
timeline (inserted in the same transaction) never shows a move that did not happen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from alerting.sla import SlaPolicy
from service import clock
from service.clock import ensure_aware
from service.ledger.errors import StaleVersion
from service.ledger.models import Ticket, TimelineEntry
from service.vocabulary import Severity


def text_or_none(value: str | None) -> str | None:
    """``value`` without surrounding blanks; None when nothing is left."""
    value = (value or "").strip()
    return value or None


def add_timeline(
    session: Session,
    ticket_id: int,
    action: str,
    actor: str,
    at: datetime,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    response_url: str | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one entry to the ticket's timeline (in the caller's transaction)."""
    session.add(
        TimelineEntry(
            ticket_id=ticket_id,
            action=action,
            actor=actor,
            at=at,
            from_status=from_status,
            to_status=to_status,
            note=note,
            response_url=response_url,
            version=version,
            detail=detail or {},
        )
    )


def recorded_now(ticket: Ticket) -> datetime:
    """The time to record an action at: now, but never before what the ticket already recorded.

    Keeps discovery ≤ 签收 ≤ 办理 ≤ 回应 ≤ 办结 in recorded order even when the clock steps back
    (a corrected system clock, a what-if run).
    """
    floor = [ticket.discovered_at, *(t for t in (ticket.ack_met_at, ticket.handle_met_at) if t is not None)]
    if ticket.respond_met_at is not None:
        floor.append(ticket.respond_met_at)
    if ticket.timeline:
        floor.append(max(entry.at for entry in ticket.timeline))
    return max([clock.now(), *floor])


def save_change(
    session: Session,
    ticket: Ticket,
    expected_version: int,
    values: dict[str, Any],
    *,
    action: str,
    actor: str,
    at: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    response_url: str | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Write ``values`` if the ticket is still at ``expected_version``, with its timeline entry; the new version.

    Raises StaleVersion when another transaction changed the ticket first. The entry is never dated
    before the ticket's latest one: the timeline reads in order even after the clock stepped back.
    """
    if ticket.timeline:
        at = max(at, *(entry.at for entry in ticket.timeline))
    new_version = expected_version + 1
    changed = cast(
        "CursorResult[Any]",
        session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.version == expected_version)
            # Any change may move a deadline or meet a stage: the SLA monitor re-plans this ticket next run.
            .values(**values, version=new_version, updated_at=at, next_due_at=Ticket.discovered_at)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if changed != 1:
        current = session.scalar(select(Ticket.version).where(Ticket.id == ticket.id))
        raise StaleVersion(ticket.id, expected_version, current)
    add_timeline(
        session,
        ticket.id,
        action,
        actor,
        at,
        from_status=from_status or ticket.status,
        to_status=to_status or from_status or ticket.status,
        note=note,
        response_url=response_url,
        version=new_version,
        detail=detail,
    )
    session.flush()
    return new_version


def new_ticket_row(
    policy: SlaPolicy,
    *,
    title: str,
    severity: Severity,
    department: str,
    discovered: datetime,
    published: datetime | None,
    event_id: str | None,
    event_key: str,
    now: datetime,
) -> dict[str, Any]:
    """The columns of a newly opened ticket: one place for the single and the batch insert."""
    dues = policy.deadlines_for(severity, discovered)
    warns = policy.warn_times_for(severity, discovered)
    return {
        "title": title[:2000],
        "status": "new",
        "severity": severity,
        "department": department,
        "discovered_at": discovered,
        "published_at": published,
        "event_id": event_id,
        "event_key": event_key,
        "assigned_at": discovered,
        "ack_from": discovered,
        "ack_due": dues["acknowledge"],
        "handle_from": discovered,
        "handle_due": dues["handle"],
        "respond_from": discovered,
        "respond_due": dues["respond"],
        "handled": False,
        "responded": False,
        "escalated": False,
        "extension_pending": False,
        "version": 1,
        "next_due_at": min(warns.values()),
        "created_at": now,
        "updated_at": now,
    }


def ticket_item_row(ticket_id: int, ref: Any, now: datetime) -> dict[str, Any]:
    """The columns linking an item to a ticket: one place for the single and the batch insert."""
    return {
        "ticket_id": ticket_id,
        "item_id": ref.item_id,
        "source": ref.source,
        "channel": ref.channel,
        "title": ref.title,
        "url": ref.url,
        "order_no": (getattr(ref, "order_no", None) or "")[:100] or None,
        "published_at": ensure_aware(ref.published_at) if ref.published_at else None,
        "attached_at": now,
    }
