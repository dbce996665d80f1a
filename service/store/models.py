"""The crawl stage's shared records in the ledger database: source health and the item spool.

Both used to be files in each machine's data dir. With workers on several machines every API process
must see the same health, and items spooled while Elasticsearch was away must not wait for the machine
that spooled them (it may be gone): the database is the one place all of them reach.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


class SourceHealthRow(Base):
    """What the last crawls of one source looked like (crawlers.health judges and writes it)."""

    __tablename__ = "source_health"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_crawl_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Entries found per crawl, newest last (bounded by crawlers.health.HISTORY).
    items_per_crawl: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Which machine and process wrote it last (shown to nobody; for operators reading the table).
    written_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SpooledItem(Base):
    """One item written while the item store was unreachable, waiting to be replayed by any process."""

    __tablename__ = "item_spool"

    # Replays go in this order: a later version of an item is never overwritten by an earlier one.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    spooled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    spooled_by: Mapped[str] = mapped_column(String(200))
