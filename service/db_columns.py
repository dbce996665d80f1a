"""Column types shared by every table: UTC datetimes, 64-bit ids, insert-or-ignore."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, FromClause, Integer, TableClause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from service.clock import ensure_aware

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on SQLite (which keeps no offset) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = ensure_aware(value)
        # SQLite compares the stored text: one fixed form (naive UTC) keeps ORDER BY and < correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _insert(session: Session, table: FromClause) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT (both PostgreSQL's and SQLite's know ON CONFLICT DO NOTHING)."""
    if not isinstance(table, TableClause):  # a model's __table__ is typed FromClause but is a Table
        raise TypeError(f"insert into a table, not {type(table).__name__}")
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(session: Session, table: FromClause, values: dict[str, Any], conflict: list[str]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING on ``conflict`` columns; the new row's id, or None if it existed.

    Unlike catching IntegrityError this leaves the surrounding transaction usable on PostgreSQL, so the
    caller can do the rest of its work (or nothing) in the same transaction.
    """
    stmt = _insert(session, table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    row = session.execute(stmt.returning(table.c.id)).first()
    return None if row is None else row[0]


def insert_ignore_many(
    session: Session,
    table: FromClause,
    rows: Sequence[dict[str, Any]],
    conflict: list[str],
    returning: Sequence[str] = ("id",),
) -> list[Row[Any]]:
    """Bulk INSERT ... ON CONFLICT DO NOTHING: one statement for all ``rows``; the inserted rows' ``returning``.

    Rows that already existed are absent from the answer. The batched form of :func:`insert_ignore`
    for the hot path (a burst of alerts, tickets and outbox rows in one round trip per table).
    """
    if not rows:
        return []
    stmt = (
        _insert(session, table)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(*(table.c[c] for c in returning))
    )
    return list(session.execute(stmt, list(rows)).all())
