"""The ledger's change feed: every change of a ticket writes one timeline entry, read here in order."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from service.ledger.models import Ticket, TimelineEntry
from service.principal import Principal


def changes_after(
    session: Session, principal: Principal, last: int, limit: int = 100
) -> tuple[list[TimelineEntry], int]:
    """Ticket changes (timeline entries) after entry ``last`` that ``principal`` may know of, oldest first,
    and the id of the last entry looked at (the next call starts after it, whether it was shown or not).

    Every change of a ticket writes one entry (created, item attached, acted on, reassigned, merged,
    severity changed), so this is the ledger's change feed. A department sees its own tickets' changes,
    and the reassignment that took a ticket away from it (so its list drops the ticket); nothing else.
    """
    stmt = (
        select(TimelineEntry, Ticket.department)
        .join(Ticket, Ticket.id == TimelineEntry.ticket_id)
        .where(TimelineEntry.id > last)
        .order_by(TimelineEntry.id)
        .limit(limit)
    )
    if principal.role == "department":
        own = principal.department or ""
        stmt = stmt.where(or_(Ticket.department == own, TimelineEntry.action == "reassign"))
        rows = session.execute(stmt).all()
        shown = [
            entry
            for entry, department in rows
            if department == own or (entry.detail or {}).get("from_department") == own
        ]
        return shown, (rows[-1][0].id if rows else last)
    if not principal.sees_everything:
        return [], last
    entries = [entry for entry, _ in session.execute(stmt).all()]
    return entries, (entries[-1].id if entries else last)


def last_change_id(session: Session) -> int:
    """The newest timeline entry's id (0 when there is none): where a new change feed starts."""
    return session.scalar(select(func.max(TimelineEntry.id))) or 0
