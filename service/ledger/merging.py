"""并单 / 拆单: officers merge tickets of one department into one, or split an item out into a new ticket.

Merge: the target keeps its state; it takes the earliest discovery and publication time, the strictest
(earliest) deadline of each stage still open, the highest severity and the 督办 mark of any; the items and
the timelines of the merged tickets move to it (timeline rows copied, marked with the ticket they came
from). A merged ticket keeps its row (``merged_into``) but leaves ticket lists, the ledger, statistics and
SLA monitoring; its actions are refused. The SLA notices already raised for the merged tickets count for
the target, so a deadline that was warned about is not warned about again. Later items of a merged
ticket's event attach to the target.

Split: one item leaves a ticket and becomes a new ticket of the same department and severity whose
deadlines count from that item's discovery (when it was stored); the item gets an event of its own, so
its later reposts follow it.

Both check every ticket's version (409 when stale), write a timeline entry on every ticket touched and
are audited by the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerting.models import SlaNotice
from service import clock
from service.clock import ensure_aware
from service.db import rows_affected
from service.db_columns import insert_ignore
from service.ledger import transitions
from service.ledger.alerts import TicketAlerts
from service.ledger.config import LedgerConfig, ledger_config
from service.ledger.errors import InvalidInput, StaleVersion, TicketNotFound
from service.ledger.models import STAGE_COLUMNS, Ticket, TimelineEntry
from service.ledger.records import add_timeline, save_change
from service.ledger.service import get
from service.principal import Principal
from service.store.base import Store
from service.vocabulary import SEVERITY_RANK, STAGES

OFFICERS = ("officer", "admin")


def _officer(principal: Principal, action: str) -> None:
    if principal.role not in OFFICERS:
        raise transitions.RoleNotAllowedError(principal.role, action)


def _open(ticket: Ticket, action: str) -> None:
    if ticket.merged_into is not None:
        raise transitions.TransitionNotAllowed(ticket.status, action, f"已并入工单 #{ticket.merged_into}")
    if ticket.status == "closed":
        raise transitions.TransitionNotAllowed(ticket.status, action, "已办结的工单不能并单或拆单")


def _check_version(ticket: Ticket, version: int | None) -> int:
    expected = ticket.version if version is None else version
    if expected != ticket.version:
        raise StaleVersion(ticket.id, expected, ticket.version)
    return expected


def merge(
    session: Session,
    target_id: int,
    sources: Sequence[tuple[int, int | None]],
    principal: Principal,
    *,
    version: int | None = None,
    note: str | None = None,
) -> Ticket:
    """Merge the ``sources`` ((ticket id, expected version) pairs) into ticket ``target_id``."""
    _officer(principal, "merge")
    ids = _source_ids(target_id, sources)
    target = get(session, target_id, principal)
    _open(target, "merge")
    expected = _check_version(target, version)
    merged = [_mergeable(session, target, sid, sversion, principal) for sid, sversion in sources]
    now = clock.now()
    values = _merged_values(target, merged)
    before = {stage: target.due(stage).isoformat() for stage in STAGES}
    # Notices already raised for a merged ticket count for the target: no second warning of one deadline.
    for notice in session.scalars(select(SlaNotice).where(SlaNotice.ticket_id.in_(ids))).all():
        _copy_notice(session, notice, target.id)
    moved = _move_items(session, target, merged)
    _copy_timelines(session, target, merged)
    session.flush()
    for source, (_, sversion) in zip(merged, sources, strict=True):
        _mark_merged(session, source, sversion, target, principal, now, note)
    save_change(
        session,
        target,
        expected,
        values,
        action="merge",
        actor=principal.username,
        at=now,
        note=note,
        detail={"merged": [t.id for t in merged], "items": moved, "deadlines_before": before},
    )
    session.expire_all()
    return get(session, target.id)


def _source_ids(target_id: int, sources: Sequence[tuple[int, int | None]]) -> list[int]:
    """The ids of the tickets to merge: at least one, none twice, not the target."""
    if not sources:
        raise InvalidInput("sources", "请选择要并入的工单")
    ids = [sid for sid, _ in sources]
    if target_id in ids or len(set(ids)) != len(ids):
        raise InvalidInput("sources", "并入的工单不能重复，也不能是目标工单本身")
    return ids


def _mergeable(session: Session, target: Ticket, sid: int, version: int | None, principal: Principal) -> Ticket:
    """Ticket ``sid``, visible, open, of the target's department and at the version the officer saw."""
    source = get(session, sid, principal)
    _open(source, "merge")
    if source.department != target.department:
        raise InvalidInput("sources", f"工单 #{sid} 属于其他单位，只能合并同一单位的工单")
    _check_version(source, version)
    return source


def _merged_values(target: Ticket, merged: Sequence[Ticket]) -> dict[str, Any]:
    """The target after the merge: earliest times, strictest open deadlines, highest severity, any 督办."""
    everyone = [target, *merged]
    values: dict[str, Any] = {
        "discovered_at": min(t.discovered_at for t in everyone),
        "severity": max((t.severity for t in everyone), key=SEVERITY_RANK.__getitem__),
        "escalated": any(t.escalated for t in everyone),
        "merged_from": ",".join(
            [*(target.merged_from.split(",") if target.merged_from else []), *(str(t.id) for t in merged)]
        )[:500],
    }
    published = [t.published_at for t in everyone if t.published_at is not None]
    if published:
        values["published_at"] = min(published)
    for stage in STAGES:
        if target.met(stage) is not None:
            continue  # a stage the target already met stays met
        column = STAGE_COLUMNS[stage]
        values[f"{column}_due"] = min(t.due(stage) for t in everyone)
        values[f"{column}_from"] = min(t.started(stage) for t in everyone)
    return values


def _copy_notice(session: Session, notice: SlaNotice, ticket_id: int) -> None:
    """An SLA notice already raised, now also counted for ``ticket_id`` (once)."""
    insert_ignore(
        session,
        SlaNotice.__table__,
        {
            "ticket_id": ticket_id,
            "stage": notice.stage,
            "level": notice.level,
            "due_at": ensure_aware(notice.due_at),
            "raised_at": ensure_aware(notice.raised_at),
            "department": notice.department,
            "message": notice.message,
        },
        ["ticket_id", "stage", "level", "due_at"],
    )


def _move_items(session: Session, target: Ticket, merged: Sequence[Ticket]) -> list[str]:
    """Items move to the target (an item already linked to it stays linked once); the ids moved."""
    have = {link.item_id for link in target.items}
    moved: list[str] = []
    target.region = None  # an older item may become its first: 地域分布 works it out again
    for source in merged:
        for link in list(source.items):
            if link.item_id in have:
                session.delete(link)
                continue
            link.ticket_id = target.id
            have.add(link.item_id)
            moved.append(link.item_id)
    return moved


def _copy_timelines(session: Session, target: Ticket, merged: Sequence[Ticket]) -> None:
    """The merged tickets' histories, copied into the target's timeline (rows are only ever inserted)."""
    for source in merged:
        for entry in source.timeline:
            session.add(
                TimelineEntry(
                    ticket_id=target.id,
                    action=entry.action,
                    actor=entry.actor,
                    at=entry.at,
                    from_status=entry.from_status,
                    to_status=entry.to_status,
                    note=entry.note,
                    response_url=entry.response_url,
                    version=None,
                    detail={**(entry.detail or {}), "from_ticket": source.id},
                )
            )


def _mark_merged(
    session: Session,
    source: Ticket,
    version: int | None,
    target: Ticket,
    principal: Principal,
    now: datetime,
    note: str | None,
) -> None:
    """The merged ticket points at the target and leaves SLA monitoring (its deadlines are the target's)."""
    expected = source.version if version is None else version
    changed = rows_affected(
        session,
        update(Ticket)
        .where(Ticket.id == source.id, Ticket.version == expected)
        .values(merged_into=target.id, next_due_at=None, version=expected + 1, updated_at=now)
        .execution_options(synchronize_session=False),
    )
    if changed != 1:
        raise StaleVersion(source.id, expected, session.scalar(select(Ticket.version).where(Ticket.id == source.id)))
    add_timeline(
        session,
        source.id,
        "merged_into",
        principal.username,
        now,
        from_status=source.status,
        to_status=source.status,
        note=note,
        version=expected + 1,
        detail={"into": target.id},
    )


def split(
    session: Session,
    ticket_id: int,
    item_id: str,
    principal: Principal,
    store: Store,
    *,
    alerts: TicketAlerts,
    version: int | None = None,
    note: str | None = None,
    config: LedgerConfig | None = None,
) -> tuple[Ticket, Ticket]:
    """Move one item out of a ticket into a new ticket; returns (the ticket, the new ticket)."""
    _officer(principal, "split")
    config = config or ledger_config()
    ticket = get(session, ticket_id, principal)
    _open(ticket, "split")
    expected = _check_version(ticket, version)
    link = next((i for i in ticket.items if i.item_id == item_id), None)
    if link is None:
        raise InvalidInput("item_id", f"条目 {item_id} 不在工单 #{ticket.id} 中")
    if len(ticket.items) < 2:
        raise InvalidInput("item_id", "工单只有这一条条目，无需拆单")
    now = clock.now()
    stored = store.get(item_id)
    # Its deadlines start from the item's own discovery: when the store first had it.
    discovered: datetime = ensure_aware(stored.stored_at) if stored and stored.stored_at else link.attached_at
    dues = config.policy.deadlines_for(ticket.severity, discovered)
    event = f"split-{item_id}"
    new = Ticket(
        title=(stored.title if stored else link.title)[:2000],
        status="new",
        severity=ticket.severity,
        department=ticket.department,
        discovered_at=discovered,
        published_at=link.published_at,
        event_id=event,
        event_key=event,
        assigned_at=now,
        ack_from=discovered,
        ack_due=dues["acknowledge"],
        handle_from=discovered,
        handle_due=dues["handle"],
        respond_from=discovered,
        respond_due=dues["respond"],
        handled=False,
        responded=False,
        escalated=False,
        extension_pending=False,
        version=1,
        next_due_at=discovered,
        split_from=ticket.id,
        created_at=now,
        updated_at=now,
    )
    session.add(new)
    session.flush()
    link.ticket_id = new.id
    ticket.region = None  # its first item may have left: 地域分布 works it out again
    notified = _carry_notices(session, ticket, new, item_id, alerts)
    add_timeline(
        session,
        new.id,
        "create",
        principal.username,
        now,
        to_status="new",
        note=note,
        version=1,
        detail={
            "split_from": ticket.id,
            "item": item_id,
            "deadlines": {s: d.isoformat() for s, d in dues.items()},
            **({"notified": notified} if notified else {}),
        },
    )
    save_change(
        session,
        ticket,
        expected,
        {},
        action="split",
        actor=principal.username,
        at=now,
        note=note,
        detail={"item": item_id, "new_ticket": new.id},
    )
    # Later reposts of the item follow it to the new ticket, not back to the old one.
    store.set_event([item_id], event)
    session.expire_all()
    return get(session, ticket.id), get(session, new.id)


def _carry_notices(
    session: Session, old: Ticket, new: Ticket, item_id: str, alerts: TicketAlerts
) -> list[dict[str, Any]]:
    """What was already sent about the split-off item now belongs to its new ticket; nothing is sent again.

    The item's alert (pushed when it was matched) points at the new ticket, and the new ticket records when
    it went out. SLA notices of the old ticket for a deadline the new ticket has too (same stage, same due
    time: the item was discovered with the ticket) count for the new ticket, as a merge carries them.
    """
    notified = alerts.move_item_alerts(session, item_id, old.department, new.id)
    for notice in session.scalars(select(SlaNotice).where(SlaNotice.ticket_id == old.id)).all():
        if ensure_aware(notice.due_at) != ensure_aware(new.due(notice.stage)):
            continue
        _copy_notice(session, notice, new.id)
        notified.append(
            {"sla": notice.stage, "level": notice.level, "raised_at": ensure_aware(notice.raised_at).isoformat()}
        )
    return notified


__all__ = ["TicketNotFound", "merge", "split"]
