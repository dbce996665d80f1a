"""Opening tickets for a whole matching batch in a few bulk statements (:func:`open_or_attach_many`).

The batch path of :func:`service.ledger.service.open_or_attach`: the same tickets, items, times and
timeline entries, and concurrency-safe the same way (INSERT ... ON CONFLICT DO NOTHING on the uniqueness
keys), written step by step below: check the openings, insert the new tickets, find the standing ones,
keep the earliest publication time, link the items, and write the timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from alerting.sla import SlaPolicy
from service import clock
from service.clock import ensure_aware
from service.db_columns import insert_ignore_many
from service.ledger.config import ledger_config
from service.ledger.errors import InvalidInput
from service.ledger.models import Ticket, TicketItem, TimelineEntry
from service.ledger.records import new_ticket_row, ticket_item_row
from service.ledger.service import ItemRef, resolve_merged
from service.vocabulary import SEVERITY_LABELS, Severity

Key = tuple[str, str]  # (event key, department): a ticket's uniqueness key


@dataclass(frozen=True)
class Opening:
    """One hit as the ledger takes it in a batch: open the (event, department) ticket or attach the item."""

    title: str
    severity: Severity
    department: str
    item: ItemRef
    discovered_at: datetime
    published_at: datetime | None = None
    event_id: str | None = None

    @property
    def key(self) -> Key:
        """(event key, department): the ticket's uniqueness key."""
        return (self.event_id or f"item:{self.item.item_id}", self.department)


@dataclass
class _Batch:
    """The batch as the steps share it: the first opening of each key, times, and the tickets found."""

    openings: Sequence[Opening]
    actor: str
    now: datetime
    first: dict[Key, Opening]
    earliest: dict[Key, datetime]
    created: dict[Key, int]
    deadlines: dict[Key, dict[str, datetime]]
    ids: dict[Key, int]


def open_or_attach_many(
    session: Session, openings: Sequence[Opening], *, policy: SlaPolicy | None = None, actor: str = "system:matching"
) -> dict[Key, tuple[int, bool]]:
    """:func:`service.ledger.service.open_or_attach` for a whole matching batch.

    Returns (event key, department) -> (ticket id, created in this call). The first opening of a key
    in the batch gives a new ticket its title, severity and times, as the one-at-a-time path would.
    """
    if not openings:
        return {}
    _check(openings)
    batch = _Batch(openings, actor, clock.now(), *_first_and_earliest(openings), created={}, deadlines={}, ids={})
    _insert_new_tickets(session, batch, policy or ledger_config().policy)
    missing = [key for key in batch.first if key not in batch.ids]
    _find_standing(session, batch, missing)
    _keep_earliest_publication(session, batch, missing)
    timeline = _creations(batch) + _attachments(batch, _link_items(session, batch))
    if timeline:
        session.execute(insert(TimelineEntry.__table__), timeline)
    return {key: (batch.ids[key], key in batch.created) for key in batch.first if key in batch.ids}


def _check(openings: Sequence[Opening]) -> None:
    for opening in openings:
        if opening.severity not in SEVERITY_LABELS:
            raise InvalidInput("severity", f"未知的严重程度 {opening.severity!r}")
        if not opening.department:
            raise InvalidInput("department", "须指定责任单位")


def _first_and_earliest(openings: Sequence[Opening]) -> tuple[dict[Key, Opening], dict[Key, datetime]]:
    """The first opening of each key, and the earliest publication time the batch knows for it."""
    first: dict[Key, Opening] = {}
    earliest: dict[Key, datetime] = {}
    for opening in openings:
        first.setdefault(opening.key, opening)
        if opening.published_at is not None:
            published = ensure_aware(opening.published_at)
            if opening.key not in earliest or published < earliest[opening.key]:
                earliest[opening.key] = published
    return first, earliest


def _insert_new_tickets(session: Session, batch: _Batch, policy: SlaPolicy) -> None:
    """A ticket for each key not yet in the ledger (another writer's ticket for a key wins quietly)."""
    rows = []
    for key, opening in batch.first.items():
        row = new_ticket_row(
            policy,
            title=opening.title,
            severity=opening.severity,
            department=opening.department,
            discovered=ensure_aware(opening.discovered_at),
            published=batch.earliest.get(key),
            event_id=opening.event_id,
            event_key=key[0],
            now=batch.now,
        )
        batch.deadlines[key] = {
            "acknowledge": row["ack_due"],
            "handle": row["handle_due"],
            "respond": row["respond_due"],
        }
        rows.append(row)
    inserted = insert_ignore_many(
        session, Ticket.__table__, rows, ["event_key", "department"], returning=("id", "event_key", "department")
    )
    batch.created = {(r.event_key, r.department): r.id for r in inserted}
    batch.ids.update(batch.created)


def _find_standing(session: Session, batch: _Batch, missing: Sequence[Key]) -> None:
    """The tickets already open for the other keys; a merged one (并单) stands for by the one it went into."""
    for chunk in _chunks(missing, 400):
        found = session.execute(
            select(Ticket.id, Ticket.event_key, Ticket.department).where(
                Ticket.event_key.in_({k[0] for k in chunk}), Ticket.department.in_({k[1] for k in chunk})
            )
        ).all()
        wanted = set(chunk)
        batch.ids.update({(r.event_key, r.department): r.id for r in found if (r.event_key, r.department) in wanted})
    standing = resolve_merged(session, [batch.ids[k] for k in missing if k in batch.ids])
    batch.ids.update({k: standing[batch.ids[k]] for k in missing if k in batch.ids and batch.ids[k] in standing})


def _keep_earliest_publication(session: Session, batch: _Batch, missing: Sequence[Key]) -> None:
    """Existing tickets: the event was published when its first item was, so keep the earliest time."""
    later = [
        {"tid": batch.ids[k], "published": batch.earliest[k]} for k in missing if k in batch.earliest and k in batch.ids
    ]
    if not later:
        return
    published_at = Ticket.__table__.c.published_at
    session.execute(
        update(Ticket.__table__)
        .where(
            Ticket.__table__.c.id == bindparam("tid"),
            or_(published_at.is_(None), published_at > bindparam("published")),
        )
        .values(published_at=bindparam("published")),
        later,
    )


def _link_items(session: Session, batch: _Batch) -> list[Any]:
    """Each opening's item on its ticket; the links that are new."""
    links = [ticket_item_row(batch.ids[opening.key], opening.item, batch.now) for opening in batch.openings]
    unique_links = list({(link["ticket_id"], link["item_id"]): link for link in links}.values())
    return insert_ignore_many(
        session, TicketItem.__table__, unique_links, ["ticket_id", "item_id"], returning=("ticket_id", "item_id")
    )


def _entry(batch: _Batch, ticket_id: int, action: str, detail: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "action": action,
        "actor": batch.actor,
        "at": batch.now,
        "from_status": None,
        "to_status": status.get("to_status"),
        "note": None,
        "response_url": None,
        "version": status.get("version"),
        "detail": detail,
    }


def _creations(batch: _Batch) -> list[dict[str, Any]]:
    """A "create" entry for each new ticket, with its severity and deadlines."""
    return [
        _entry(
            batch,
            ticket_id,
            "create",
            {
                "severity": batch.first[key].severity,
                "deadlines": {stage: d.isoformat() for stage, d in batch.deadlines[key].items()},
            },
            to_status="new",
            version=1,
        )
        for key, ticket_id in batch.created.items()
    ]


def _attachments(batch: _Batch, attached: Sequence[Any]) -> list[dict[str, Any]]:
    """An "attach_item" entry for each ticket that got items besides the one that created it."""
    creators = {ticket_id: batch.first[key].item.item_id for key, ticket_id in batch.created.items()}
    by_ticket: dict[int, list[str]] = {}
    for link in attached:
        if creators.get(link.ticket_id) != link.item_id:
            by_ticket.setdefault(link.ticket_id, []).append(link.item_id)
    return [_entry(batch, ticket_id, "attach_item", {"items": item_ids}) for ticket_id, item_ids in by_ticket.items()]


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
