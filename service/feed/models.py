"""Alert and rule-state tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db_columns import UtcDateTime


class Alert(Base):
    """One alert per (item, department): all rules of that department that hit the item."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("item_id", "department", name="uq_alerts_item_department"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(64), index=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    rule_ids: Mapped[list[str]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(16))
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


class RuleRecord(Base):
    """A keyword rule as managed through the API or imported from departments.yaml."""

    __tablename__ = "rules"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    expr: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The structured form {regions, subjects, events, exclude}, when the rule is written that way.
    structured: Mapped[dict[str, list[str]] | None] = mapped_column(JSON, nullable=True)
    severity: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # "file": imported from departments.yaml (re-imported when the file's text of it changes); "api".
    origin: Mapped[str] = mapped_column(String(8), default="api")
    file_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    muted_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    muted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
