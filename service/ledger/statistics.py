"""Ledger statistics (KPIs) per department: counts by status, on-time rates, average hours per stage.

Computed by one GROUP BY query in the database, never by loading ticket objects.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from service import clock
from service.ledger import transitions
from service.ledger.models import STAGE_COLUMNS, Ticket
from service.ledger.service import ACK_NOT_WAIVED, discovered_within, late_clause
from service.principal import Principal
from service.vocabulary import STAGES


def _seconds(start: Any, end: Any, dialect: str) -> Any:
    """SQL for ``end - start`` in seconds, clamped at zero (see timing.elapsed)."""
    diff: Any
    if dialect == "postgresql":
        diff = func.extract("epoch", end - start)
    else:  # SQLite keeps naive UTC text, which julianday reads
        diff = (func.julianday(end) - func.julianday(start)) * 86400.0
    return case((diff < 0, 0.0), else_=diff)


def stats(
    session: Session,
    principal: Principal,
    *,
    date_from: date | datetime | None = None,
    date_to: date | datetime | None = None,
) -> list[dict[str, Any]]:
    """Per department: counts by status, on-time rates and average hours per stage, time to discover.

    A stage's on-time rate is met-in-time / (met + unmet-past-due); stages still running in time are
    not counted yet. Averages are hours from discovery to the stage being met, over met stages.
    One GROUP BY query in the database (100k tickets in well under a second), never ticket objects.
    """
    conditions: list[Any] = [Ticket.merged_into.is_(None)]
    if principal.role == "department":
        conditions.append(Ticket.department == (principal.department or ""))
    elif not principal.sees_everything:
        return []
    conditions.extend(discovered_within(date_from, date_to))
    now = clock.now()
    dialect = session.get_bind().dialect.name

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    columns: dict[str, Any] = {"total": func.count()}
    for status in transitions.STATUSES:
        columns[f"status:{status}"] = count(Ticket.status == status)
    columns["escalated"] = count(Ticket.escalated.is_(True))
    columns["overdue"] = count(or_(*(late_clause(stage, now) for stage in STAGES)))
    for stage in STAGES:
        prefix = STAGE_COLUMNS[stage]
        due, met = getattr(Ticket, f"{prefix}_due"), getattr(Ticket, f"{prefix}_met_at")
        columns[f"{stage}:met"] = count(met.is_not(None))
        columns[f"{stage}:in_time"] = count(and_(met.is_not(None), met <= due))
        columns[f"{stage}:late_open"] = count(
            and_(met.is_(None), due < now, Ticket.status.in_(ACK_NOT_WAIVED))
            if stage == "acknowledge"
            else and_(met.is_(None), due < now)
        )
        columns[f"{stage}:avg"] = func.avg(case((met.is_not(None), _seconds(Ticket.discovered_at, met, dialect))))
    columns["replied_before"] = count(
        and_(Ticket.respond_met_at.is_not(None), Ticket.respond_met_at < Ticket.discovered_at)
    )
    columns["discover_avg"] = func.avg(
        case((Ticket.published_at.is_not(None), _seconds(Ticket.published_at, Ticket.discovered_at, dialect)))
    )
    names = list(columns)
    rows = session.execute(
        select(Ticket.department, *(columns[n].label(f"c{i}") for i, n in enumerate(names)))
        .where(*conditions)
        .group_by(Ticket.department)
        .order_by(Ticket.department)
    ).all()
    out = []
    for record in rows:
        got = dict(zip(names, record[1:], strict=True))
        row: dict[str, Any] = {
            "department": record[0],
            "total": int(got["total"]),
            "by_status": {s: int(got[f"status:{s}"] or 0) for s in transitions.STATUSES},
            "escalated": int(got["escalated"] or 0),
            "overdue": int(got["overdue"] or 0),
        }
        for stage in STAGES:
            met_count = int(got[f"{stage}:met"] or 0)
            decided = met_count + int(got[f"{stage}:late_open"] or 0)
            in_time = int(got[f"{stage}:in_time"] or 0)
            row[f"{stage}_on_time_rate"] = round(in_time / decided, 4) if decided else None
            average = got[f"{stage}:avg"]
            row[f"{stage}_avg_hours"] = round(float(average) / 3600, 2) if met_count and average is not None else None
        row["replied_before_discovery"] = int(got["replied_before"] or 0)
        average = got["discover_avg"]
        row["avg_discover_hours"] = round(float(average) / 3600, 2) if average is not None else None
        out.append(row)
    return out
