"""The audit log and its chain head."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db_columns import BigId, UtcDateTime

GENESIS = "0" * 64


class AuditRecord(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    result: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the chain's last hash (tail truncation shows) and the anchor left by the last purge.

    Every append updates this row first, which serialises appenders on SQLite and PostgreSQL alike
    so two transactions never chain onto the same predecessor.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_hash: Mapped[str] = mapped_column(String(64))
    # Records with ids up to this one were purged; the first remaining record chains onto anchor_hash.
    anchor_after_id: Mapped[int] = mapped_column(BigId, default=0)
    appended: Mapped[int] = mapped_column(BigId, default=0)
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Set by migration i11_0004 to the last record written before the HMAC change; cleared at the first
    # start once the legacy segment is re-anchored (service.audit.legacy). It only goes down.
    legacy_last_id: Mapped[int] = mapped_column(BigId, default=0, server_default="0")
