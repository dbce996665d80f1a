"""The scheduler lease: one row per scheduler name, held by one process at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


class SchedulerLease(Base):
    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobHealth(Base):
    """What the scheduler last saw of one job: written by the scheduler, read by /healthz in any process."""

    __tablename__ = "scheduler_job_health"

    job_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    interval_seconds: Mapped[float] = mapped_column(Float)
    # The scheduler start that began watching the job: its first success is due 3 intervals later.
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_success: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Set when officers were told the job stalled; cleared when they were told it runs again.
    stalled_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
