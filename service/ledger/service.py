"""The response ledger's service: reading tickets and opening them (one per event and department).

Acting on a ticket is :mod:`service.ledger.actions` (the action table), a matching batch's openings
:mod:`service.ledger.batch`, public replies found by the crawler :mod:`service.ledger.replies`, statistics
:mod:`service.ledger.statistics`, the configuration :mod:`service.ledger.config`, and how rows are written
(versioned changes, timeline) :mod:`service.ledger.records`.

Co-handling (several departments on one ticket at once) is not supported yet: a ticket belongs to one
department; the matching engine opens one ticket per department concerned instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from alerting.sla import Remaining, SlaPolicy
from service import clock
from service.clock import SHANGHAI, ensure_aware
from service.db_columns import insert_ignore
from service.ledger import transitions
from service.ledger.config import ledger_config
from service.ledger.errors import InvalidInput, TicketNotFound
from service.ledger.models import STAGE_COLUMNS, Ticket, TicketItem
from service.ledger.records import add_timeline, new_ticket_row, ticket_item_row
from service.ledger.timing import stage_late, stage_waived
from service.ledger.transitions import Facts
from service.principal import Principal
from service.store.base import Item
from service.vocabulary import SEVERITY_LABELS, STAGES, Severity, is_severity

# Statuses in which the acknowledge stage still counts: elsewhere it is met or waived (service.ledger.timing).
ACK_NOT_WAIVED = ("new", "returned")


# -- reading ---------------------------------------------------------------------------------------


def facts_of(ticket: Ticket) -> Facts:
    """The transition-table facts of ``ticket``."""
    return Facts(
        handled=ticket.handled,
        responded=ticket.responded,
        extension_pending=ticket.extension_pending,
        escalated=ticket.escalated,
    )


def overdue(ticket: Ticket, now: datetime | None = None) -> dict[str, bool]:
    """Per stage: True when it was met late, or is unmet and past its deadline."""
    now = now or clock.now()
    out: dict[str, bool] = {}
    for stage in STAGES:
        out[stage] = stage_late(ticket.status, stage, ticket.met(stage), ticket.due(stage), now)
    return out


def time_left(ticket: Ticket, now: datetime | None = None) -> dict[str, float | None]:
    """Per stage: seconds until the deadline (negative when past), None once met (or waived)."""
    now = now or clock.now()
    return {
        stage: None
        if ticket.met(stage) is not None or stage_waived(ticket.status, stage, None)
        else (ticket.due(stage) - now).total_seconds()
        for stage in STAGES
    }


def remaining(
    ticket: Ticket, now: datetime | None = None, policy: SlaPolicy | None = None
) -> dict[str, Remaining | None]:
    """Per stage: what is left, said in the unit the stage's deadline counts in (working days or natural
    time, from the SLA policy of the ticket's severity); None once met (or waived), like ``time_left``."""
    now = now or clock.now()
    policy = policy or ledger_config().policy
    severity = ticket.severity
    if not is_severity(severity):  # the ledger stores only the four severities; nothing to count in otherwise
        return dict.fromkeys(STAGES)
    return {
        stage: None
        if ticket.met(stage) is not None or stage_waived(ticket.status, stage, None)
        else policy.remaining(severity, stage, ticket.due(stage), now)
        for stage in STAGES
    }


def allowed_actions_for(ticket: Ticket, principal: Principal) -> list[str]:
    """The actions ``principal`` can do on ``ticket`` now."""
    if principal.role == "department" and principal.department != ticket.department:
        return []
    return transitions.allowed_actions(ticket.status, facts_of(ticket), principal.role)


def get(session: Session, ticket_id: int, principal: Principal | None = None) -> Ticket:
    """The ticket, refreshed; TicketNotFound when missing or not visible to ``principal``."""
    ticket = session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None or (principal is not None and not principal.may_see_department(ticket.department)):
        raise TicketNotFound(ticket_id)
    return ticket


def discovered_within(date_from: date | datetime | None, date_to: date | datetime | None) -> list[Any]:
    """SQL conditions bounding the discovery time; a date bound includes the whole Asia/Shanghai day."""
    conditions = []
    if date_from is not None:
        start = (
            ensure_aware(date_from)
            if isinstance(date_from, datetime)
            else datetime.combine(date_from, time(0), tzinfo=SHANGHAI)
        )
        conditions.append(Ticket.discovered_at >= start)
    if date_to is not None:
        end = (
            ensure_aware(date_to)
            if isinstance(date_to, datetime)
            else datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        )
        conditions.append(Ticket.discovered_at < end)
    return conditions


def late_clause(stage: str, now: datetime) -> Any:
    """SQL of timing.stage_late for one stage at ``now``: met after its deadline, or unmet and past it."""
    prefix = STAGE_COLUMNS[stage]
    due, met = getattr(Ticket, f"{prefix}_due"), getattr(Ticket, f"{prefix}_met_at")
    unmet_late = and_(met.is_(None), due < now)
    if stage == "acknowledge":
        unmet_late = and_(unmet_late, Ticket.status.in_(ACK_NOT_WAIVED))
    return or_(and_(met.is_not(None), met > due), unmet_late)


def list_tickets(
    session: Session,
    principal: Principal,
    *,
    status: Sequence[str] | None = None,
    department: str | None = None,
    overdue_only: bool | None = None,
    date_from: date | datetime | None = None,
    date_to: date | datetime | None = None,
    page: int = 1,
    size: int = 20,
) -> tuple[list[Ticket], int]:
    """Tickets ``principal`` may see, newest discovered first, and their total count.

    ``date_from``/``date_to`` bound the discovery time (dates are whole Asia/Shanghai days, both
    included); ``overdue_only`` True keeps tickets with a stage late or past due, False the others.
    """
    conditions = []
    if principal.role == "department":
        conditions.append(Ticket.department == (principal.department or ""))
    elif not principal.sees_everything:
        return [], 0
    if department:
        conditions.append(Ticket.department == department)
    if status:
        unknown = [s for s in status if s not in transitions.STATUSES]
        if unknown:
            raise InvalidInput("status", f"未知的工单状态 {unknown[0]!r}，可选：{'、'.join(transitions.STATUSES)}")
        conditions.append(Ticket.status.in_(list(status)))
    if overdue_only is not None:
        now = clock.now()
        clause = or_(*(late_clause(stage, now) for stage in STAGES))
        conditions.append(clause if overdue_only else ~clause)
    conditions.extend(discovered_within(date_from, date_to))
    # A merged ticket (并单) is represented by the ticket it was merged into.
    conditions.append(Ticket.merged_into.is_(None))
    total = session.scalar(select(func.count()).select_from(Ticket).where(*conditions)) or 0
    rows = session.scalars(
        select(Ticket)
        .where(*conditions)
        .order_by(Ticket.discovered_at.desc(), Ticket.id.desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return list(rows), total


def resolve_merged(session: Session, ticket_ids: Iterable[int]) -> dict[int, int]:
    """For tickets that were merged (并单): the ticket standing for each now, following merges of merges."""
    out: dict[int, int] = {}
    pending = set(ticket_ids)
    seen: set[int] = set()
    while pending:
        rows = session.execute(
            select(Ticket.id, Ticket.merged_into).where(Ticket.id.in_(pending), Ticket.merged_into.is_not(None))
        ).all()
        seen |= pending
        pending = set()
        for tid, into in rows:
            if into is None:  # excluded by the query
                continue
            out[tid] = into
            if into not in seen:
                pending.add(into)
    for tid in list(out):
        into, hops = out[tid], 0
        while into in out and hops < 100:
            into, hops = out[into], hops + 1
        out[tid] = into
    return out


# -- opening ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemRef:
    """An item of the store as a ticket links it: id plus a snapshot of source, title and URL."""

    item_id: str
    source: str = ""
    channel: str | None = None
    title: str = ""
    url: str | None = None
    published_at: datetime | None = None
    order_no: str | None = None

    @classmethod
    def from_item(cls, item: Item) -> ItemRef:
        """The reference to a stored item."""
        return cls(
            item_id=item.id,
            source=item.source,
            channel=item.channel,
            title=item.title,
            url=item.url,
            published_at=item.published_at,
            order_no=item.order_no,
        )


def _as_ref(item: ItemRef | Item) -> ItemRef:
    return ItemRef.from_item(item) if isinstance(item, Item) else item


def _attach(session: Session, ticket_id: int, refs: Iterable[ItemRef], now: datetime) -> list[str]:
    attached = []
    for ref in refs:
        new_id = insert_ignore(
            session,
            TicketItem.__table__,
            ticket_item_row(ticket_id, ref, now),
            ["ticket_id", "item_id"],
        )
        if new_id is not None:
            attached.append(ref.item_id)
    return attached


def open_or_attach(
    session: Session,
    *,
    title: str,
    severity: Severity,
    department: str,
    discovered_at: datetime | None = None,
    published_at: datetime | None = None,
    event_id: str | None = None,
    items: Sequence[ItemRef | Item] = (),
    policy: SlaPolicy | None = None,
    actor: str = "system:matching",
) -> tuple[Ticket, bool]:
    """The ticket of (event, department), created with its deadlines if new; the items are linked to it.

    Returns ``(ticket, created)``. Without ``event_id`` the first item's id stands for the event. Safe
    under concurrency: a second creator for the same event attaches instead of failing.
    """
    if severity not in SEVERITY_LABELS:
        raise InvalidInput("severity", f"未知的严重程度 {severity!r}，可选：{'、'.join(SEVERITY_LABELS)}")
    if not department:
        raise InvalidInput("department", "须指定责任单位")
    refs = [_as_ref(i) for i in items]
    if not event_id and not refs:
        raise InvalidInput("event_id", "开单须有事件编号或至少一条条目")
    event_key = event_id or f"item:{refs[0].item_id}"
    policy = policy or ledger_config().policy
    now = clock.now()
    discovered = ensure_aware(discovered_at) if discovered_at else now
    if published_at is None:
        dates = [ensure_aware(r.published_at) for r in refs if r.published_at]
        published_at = min(dates) if dates else None
    published = ensure_aware(published_at) if published_at else None
    row = new_ticket_row(
        policy,
        title=title,
        severity=severity,
        department=department,
        discovered=discovered,
        published=published,
        event_id=event_id,
        event_key=event_key,
        now=now,
    )
    dues = {"acknowledge": row["ack_due"], "handle": row["handle_due"], "respond": row["respond_due"]}
    new_id = insert_ignore(
        session,
        Ticket.__table__,
        row,
        ["event_key", "department"],
    )
    created = new_id is not None
    if new_id is not None:
        ticket_id = new_id
        add_timeline(
            session,
            ticket_id,
            "create",
            actor,
            now,
            to_status="new",
            version=1,
            detail={"severity": severity, "deadlines": {s: d.isoformat() for s, d in dues.items()}},
        )
    else:
        ticket_id = session.execute(
            select(Ticket.id).where(Ticket.event_key == event_key, Ticket.department == department)
        ).scalar_one()
        # The event's ticket was merged into another (并单): its items go there.
        ticket_id = resolve_merged(session, [ticket_id]).get(ticket_id, ticket_id)
        if published is not None:
            # The event was published when its first item was: keep the earliest time.
            session.execute(
                update(Ticket)
                .where(Ticket.id == ticket_id, or_(Ticket.published_at.is_(None), Ticket.published_at > published))
                .values(published_at=published)
                .execution_options(synchronize_session=False)
            )
    attached = _attach(session, ticket_id, refs, now)
    if attached and not created:
        add_timeline(session, ticket_id, "attach_item", actor, now, detail={"items": attached})
    session.flush()
    return get(session, ticket_id), created
