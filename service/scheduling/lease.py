"""A lease in the database so that a second scheduler on the same database refuses to start.

Both SQLite and PostgreSQL support it the same way: the row is taken inside a transaction, and a
holder that stopped heart-beating for ``ttl`` seconds (a crashed process) can be taken over.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from loguru import logger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service import clock
from service.db import Database
from service.scheduling.models import SchedulerLease


class LeaseHeld(Exception):
    """Another live scheduler holds the lease."""


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone=True columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Lease:
    def __init__(self, db: Database, name: str = "scheduler", ttl_seconds: int = 60) -> None:
        self.db = db
        self.name = name
        self.ttl = timedelta(seconds=ttl_seconds)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> None:
        """Take the lease or raise LeaseHeld naming the holder."""
        now = clock.now()
        try:
            with self.db.session() as session:
                row = session.execute(
                    select(SchedulerLease).where(SchedulerLease.name == self.name).with_for_update()
                ).scalar_one_or_none()
                if row is None:
                    session.add(SchedulerLease(name=self.name, owner=self.owner, acquired_at=now, heartbeat_at=now))
                    return
                if row.owner != self.owner and _aware(row.heartbeat_at) > now - self.ttl:
                    raise LeaseHeld(
                        f"另一个调度器正在运行 (another scheduler is running): {row.owner}, "
                        f"last heartbeat {_aware(row.heartbeat_at).isoformat()}"
                    )
                if row.owner != self.owner:
                    logger.warning("接管调度器租约（原持有者 {} 已失效）", row.owner)
                row.owner, row.acquired_at, row.heartbeat_at = self.owner, now, now
        except IntegrityError as exc:
            raise LeaseHeld("another scheduler took the lease at the same moment") from exc

    def renew(self) -> bool:
        """Heartbeat; False when the lease was lost (someone took it over)."""
        with self.db.session() as session:
            row = session.get(SchedulerLease, self.name, with_for_update=True)
            if row is None or row.owner != self.owner:
                return False
            row.heartbeat_at = clock.now()
            return True

    def release(self) -> None:
        with self.db.session() as session:
            row = session.get(SchedulerLease, self.name, with_for_update=True)
            if row is not None and row.owner == self.owner:
                session.delete(row)
