"""Ledger tables: tickets, the items linked to them and their append-only timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base
from service.db_columns import UtcDateTime
from service.ledger.timing import stage_waived
from service.vocabulary import STAGES, TICKET_STATUSES, Severity

STAGE_COLUMNS = {"acknowledge": "ack", "handle": "handle", "respond": "respond"}


class Ticket(Base):
    """One response record: a department's duty to acknowledge, handle and respond to one event."""

    __tablename__ = "tickets"
    __table_args__ = (
        # One ticket per event per department; items of the same event attach to it.
        UniqueConstraint("event_key", "department", name="uq_tickets_event_department"),
        Index("ix_tickets_department_status", "department", "status"),
        Index("ix_tickets_discovered_at", "discovered_at"),
        Index("ix_tickets_next_due_at", "next_due_at"),
        # The stats read the few tickets with a deadline still ahead live (service/ledger/rollup.py).
        Index("ix_tickets_ack_due", "ack_due"),
        Index("ix_tickets_handle_due", "handle_due"),
        Index("ix_tickets_respond_due", "respond_due"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="new")
    severity: Mapped[Severity] = mapped_column(String(10))
    department: Mapped[str] = mapped_column(String(100))
    discovered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # event_id, or the first item's id for items not clustered into an event: the uniqueness key.
    event_key: Mapped[str] = mapped_column(String(120))
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Per stage: when its clock started (for the warning instant), its deadline, when it was met.
    ack_from: Mapped[datetime] = mapped_column(UtcDateTime)
    ack_due: Mapped[datetime] = mapped_column(UtcDateTime)
    ack_met_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    handle_from: Mapped[datetime] = mapped_column(UtcDateTime)
    handle_due: Mapped[datetime] = mapped_column(UtcDateTime)
    handle_met_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    respond_from: Mapped[datetime] = mapped_column(UtcDateTime)
    respond_due: Mapped[datetime] = mapped_column(UtcDateTime)
    respond_met_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    handled: Mapped[bool] = mapped_column(Boolean, default=False)
    responded: Mapped[bool] = mapped_column(Boolean, default=False)
    response_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # How the response was made (service.vocabulary.RESPONSE_TYPES); a public URL only for "online".
    response_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # What the department wrote about its response (回应情况: whom it called, what letter it sent).
    response_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Who recorded the response: a user name, or system:crawler when a public reply was found.
    response_source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    extension_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    extension_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    extension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Comma-separated stages the pending request covers (those still open and not yet due).
    extension_stages: Mapped[str | None] = mapped_column(String(50), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # When the SLA monitor must look at this ticket next (its earliest warning, deadline or recovery not
    # yet raised); NULL when nothing is left to raise. Every change sets it to the change time, so the
    # monitor re-plans changed tickets; the monitor sets the exact next instant. It reads only due rows.
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # 并单/拆单 (service/ledger/merging.py): the ticket this one was merged into (it then leaves lists,
    # ledger and SLA monitoring), the ids merged into this one ("12,15"), the ticket this one was split from.
    merged_into: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # 地域分布: the region of its first item (TicketItem.region), kept here so the chart is one GROUP BY over
    # the tickets; NULL until worked out, and again when a merge or split changes which item is first.
    region: Mapped[str | None] = mapped_column(String(100), nullable=True)
    merged_from: Mapped[str | None] = mapped_column(String(500), nullable=True)
    split_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    items: Mapped[list[TicketItem]] = relationship(
        back_populates="ticket", order_by="TicketItem.id", lazy="selectin", cascade="all, delete-orphan"
    )
    timeline: Mapped[list[TimelineEntry]] = relationship(
        back_populates="ticket", order_by="TimelineEntry.id", lazy="selectin", cascade="all, delete-orphan"
    )

    def due(self, stage: str) -> datetime:
        """Deadline of ``stage``."""
        return getattr(self, f"{STAGE_COLUMNS[stage]}_due")

    def met(self, stage: str) -> datetime | None:
        """When ``stage`` was met, or None."""
        return getattr(self, f"{STAGE_COLUMNS[stage]}_met_at")

    def started(self, stage: str) -> datetime:
        """When the clock of ``stage`` started."""
        return getattr(self, f"{STAGE_COLUMNS[stage]}_from")

    def waived(self, stage: str) -> bool:
        """``stage`` was skipped rather than missed (see service.ledger.timing)."""
        return stage_waived(self.status, stage, self.met(stage))


class TicketItem(Base):
    """An item of the store linked to a ticket, with a snapshot of what it was when linked."""

    __tablename__ = "ticket_items"
    __table_args__ = (UniqueConstraint("ticket_id", "item_id", name="uq_ticket_items_ticket_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(100), default="")
    channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The source's own number (12345 工单号, 信件编号): the ledger shows it without asking the item store.
    order_no: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # 地域分布: the broadest place the item's stored text names (or 未识别地点), worked out once when a chart
    # first counts it; NULL until then (service/ledger/regions.py).
    region: Mapped[str | None] = mapped_column(String(100), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attached_at: Mapped[datetime] = mapped_column(UtcDateTime)

    ticket: Mapped[Ticket] = relationship(back_populates="items")


class TimelineEntry(Base):
    """One thing that happened to a ticket. Rows are only ever inserted."""

    __tablename__ = "ticket_timeline"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The version the action produced: two rows with the same version would mean a lost update.
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="timeline")


class TicketSuggestion(Base):
    """可能是同一事件: another open ticket of the department shown on a ticket, found when an item was matched.

    ``kind`` "related": the two share a place and a subject term; "same_event": a later item is a repost of
    items of both (the events should be one). Officers decide; nothing is merged without them.
    """

    __tablename__ = "ticket_suggestions"
    __table_args__ = (UniqueConstraint("ticket_id", "other_id", "kind", name="uq_ticket_suggestions_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(Integer, index=True)
    other_id: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    places: Mapped[list[str]] = mapped_column(JSON, default=list)
    terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


# -- statistics roll-up (service/ledger/rollup.py) ------------------------------------------------------
# Per ticket, the figures of GET /api/v1/stats that do not depend on the current time; summed per
# (Asia/Shanghai day or month of discovery, department). "_ms" columns are integer milliseconds so that
# sums are exact and independent of the order of addition.
FIGURES: tuple[str, ...] = (
    "n_total",
    *(f"status_{status}" for status in TICKET_STATUSES),
    "n_escalated",
    *(f"{STAGE_COLUMNS[stage]}_{figure}" for stage in STAGES for figure in ("met", "in_time", "ms", "pending")),
    "overdue_base",
    "replied_before",
    "discover_n",
    "discover_ms",
)


def _figure_columns() -> list[Column[Any]]:
    return [
        Column(name, BigInteger if name.endswith("_ms") else Integer, nullable=False, default=0) for name in FIGURES
    ]


# Folded sums: grain "D" rows are days (period "2026-03-02"), grain "M" rows months ("2026-03").
stats_rollup = Table(
    "ticket_stats_rollup",
    Base.metadata,
    Column("grain", String(1), primary_key=True),
    Column("period", String(10), primary_key=True),
    Column("department", String(100), primary_key=True),
    *_figure_columns(),
)

# Changes not folded yet: database triggers on tickets append one row per change (the old row's figures
# negated, the new row's figures), never updating a shared row, so concurrent writers never wait on each
# other; the ledger's scheduled job folds them into stats_rollup.
stats_delta = Table(
    "ticket_stats_delta",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("day", String(10), nullable=False),
    Column("department", String(100), nullable=False),
    *_figure_columns(),
)
