"""The alert table: one row per (item, department) a rule hit. The rule table is service.rules.models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db_columns import UtcDateTime
from service.vocabulary import Severity


class Alert(Base):
    """One alert per (item, department): all rules of that department that hit the item."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("item_id", "department", name="uq_alerts_item_department"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(64), index=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    rule_ids: Mapped[list[str]] = mapped_column(JSON)
    severity: Mapped[Severity] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    title: Mapped[str] = mapped_column(Text)
    # [{"field": "title"|"content", "text": "...", "highlights": [{"start", "end", "term"}]}]
    snippets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ticket_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # new | acknowledged | noise
    state: Mapped[str] = mapped_column(String(16), default="new")
    state_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # pushed | muted | noise | quiet | digest (waiting) | none (no route)
    push: Mapped[str] = mapped_column(String(16), default="digest")
    pushed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
