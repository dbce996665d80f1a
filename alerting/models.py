"""Tables of the alerting side: SLA notices (each raised once) and the notification outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db_columns import UtcDateTime


class SlaNotice(Base):
    """A warning, breach, escalation or recovery raised for one stage of one ticket.

    The unique key is what makes "exactly once" hold across restarts and concurrent monitors: a notice
    is inserted in the same transaction as its outbox messages, and a second insert does nothing.
    ``due_at`` is part of the key because a new deadline (reassignment, reopen, extension) is a new
    promise that deserves its own warning.
    """

    __tablename__ = "sla_notices"
    __table_args__ = (UniqueConstraint("ticket_id", "stage", "level", "due_at", name="uq_sla_notices_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(20))  # warning | breach | escalation | recovery
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    department: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text, default="")


class OutboxMessage(Base):
    """A notification waiting to be sent (or sent): written in the transaction that caused it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(100), nullable=True)
    severity: Mapped[str | None] = mapped_column(String(10), nullable=True)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # NULL once sent or given up: nothing more to do.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A file under the data dir sent along by channels that take attachments (e-mail); others get the body.
    attachment: Mapped[str | None] = mapped_column(Text, nullable=True)


__all__ = ["OutboxMessage", "SlaNotice"]
