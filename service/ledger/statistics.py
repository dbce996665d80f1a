"""Ledger statistics (KPIs) per department: counts by status, on-time rates, average hours per stage.

:func:`stats` adds whole days and months from the roll-up (service/ledger/rollup.py) to the partial
days at the edges of the range, computed live, and corrects the figures that depend on the current
time (a pending stage is late once its deadline has passed) with the few tickets whose deadline is
still ahead. :func:`live_stats` is the same figures in one GROUP BY over the tickets: the reference
the roll-up is tested against.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, cast, func, or_, select, text
from sqlalchemy.orm import Session
from sqlalchemy.types import BigInteger

from service import clock
from service.db_columns import UtcDateTime
from service.ledger import rollup, transitions
from service.ledger.models import FIGURES, STAGE_COLUMNS, Ticket, stats_delta, stats_rollup
from service.ledger.service import ACK_NOT_WAIVED, discovered_within, late_clause
from service.principal import Principal
from service.vocabulary import STAGES

# Per stage, pending tickets whose deadline is still ahead; and tickets not overdue yet only because
# of such a deadline. Subtracted from the roll-up's pending counts to give what is late now.
CORRECTIONS = (*(f"{STAGE_COLUMNS[stage]}_not_due" for stage in STAGES), "overdue_not_due")
MS_PER_HOUR = 3_600_000


def _bounds(value: date | datetime | None, *, end: bool) -> datetime | None:
    """The instant a date/datetime bound stands for (a date bound covers its whole Asia/Shanghai day)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return clock.ensure_aware(value)
    day = value + timedelta(days=1) if end else value
    return clock.ensure_aware(datetime(day.year, day.month, day.day))


def _midnight(day: date) -> datetime:
    return clock.ensure_aware(datetime(day.year, day.month, day.day))


def _whole_days(start: datetime | None, end: datetime | None) -> tuple[date | None, date | None] | None:
    """The whole Asia/Shanghai days [first, stop) inside [start, end) (None: unbounded); None if none."""
    first = stop = None
    if start is not None:
        local = clock.to_local(start)
        first = local.date() if local.time() == datetime.min.time() else local.date() + timedelta(days=1)
    if end is not None:
        stop = clock.to_local(end).date()
    if first is not None and stop is not None and first >= stop:
        return None
    return first, stop


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


class _Sql:
    """One UNION ALL statement under construction, with its bound parameters."""

    def __init__(self, department: str | None) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []
        self.department = department

    def bind(self, value: Any, type_: Any = None) -> str:
        name = f"p{len(self.params)}"
        self.params.append(bindparam(name, value, type_=type_))
        return f":{name}"

    def add(
        self,
        columns: Mapping[str, str],
        source: str,
        conditions: list[str],
        names: tuple[str, ...] = (*FIGURES, *CORRECTIONS),
        key: str = "department",
    ) -> None:
        """One part: ``key`` and the ``names`` columns (``columns``' SQL, else 0) of ``source``'s rows."""
        if self.department is not None:
            conditions = [*conditions, f"department = {self.bind(self.department)}"]
        where = " AND ".join(conditions) or "1 = 1"
        values = ", ".join(f"{columns.get(name, '0')} AS {name}" for name in names)
        self.parts.append(f"SELECT {key} AS part_key, {values} FROM {source} WHERE {where}")  # noqa: S608

    def period(self, column: str, low: str | None, high: str | None) -> list[str]:
        out = []
        if low is not None:
            out.append(f"{column} >= {self.bind(low)}")
        if high is not None:
            out.append(f"{column} < {self.bind(high)}")
        return out

    def discovered(self, low: datetime | None, high: datetime | None) -> list[str]:
        # Not "merged_into IS NULL": SQLite would read every ticket through ix_tickets_merged_into
        # instead of the discovery or deadline index (ids start at 1, so this is the same test).
        out = ["COALESCE(tickets.merged_into, 0) = 0"]
        if low is not None:
            out.append(f"tickets.discovered_at >= {self.bind(low, UtcDateTime())}")
        if high is not None:
            out.append(f"tickets.discovered_at < {self.bind(high, UtcDateTime())}")
        return out


def _add_folded(sql: _Sql, first: date | None, stop: date | None) -> None:
    """Whole days [first, stop): month rows for whole months, day rows and unfolded deltas for the rest."""
    sums = {name: name for name in FIGURES}
    month_low = None if first is None else (first if first.day == 1 else _next_month(first))
    month_high = None if stop is None else _month_start(stop)
    if month_low is not None and month_high is not None and month_low >= month_high:
        sql.add(sums, stats_rollup.name, ["grain = 'D'", *sql.period("period", _iso(first), _iso(stop))])
    else:
        sql.add(sums, stats_rollup.name, ["grain = 'M'", *sql.period("period", _ym(month_low), _ym(month_high))])
        if first is not None and month_low is not None and first < month_low:
            sql.add(sums, stats_rollup.name, ["grain = 'D'", *sql.period("period", _iso(first), _iso(month_low))])
        if stop is not None and month_high is not None and month_high < stop:
            sql.add(sums, stats_rollup.name, ["grain = 'D'", *sql.period("period", _iso(month_high), _iso(stop))])
    sql.add(sums, stats_delta.name, sql.period("day", _iso(first), _iso(stop)))


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _ym(day: date | None) -> str | None:
    return None if day is None else day.isoformat()[:7]


def _not_due(dialect: str, now: str) -> dict[str, str]:
    """SQL per CORRECTIONS column over ``tickets`` at the bound instant ``now``."""
    out = {}
    late_now = []
    for stage in STAGES:
        prefix = STAGE_COLUMNS[stage]
        due = f"tickets.{prefix}_due"
        out[f"{prefix}_not_due"] = f"CASE WHEN {rollup.pending('tickets', stage)} AND {due} >= {now} THEN 1 ELSE 0 END"
        late_now.append(rollup.met_late("tickets", stage))
        late_now.append(f"({rollup.pending('tickets', stage)} AND {due} < {now})")
    base = rollup.figures("tickets", dialect)["overdue_base"]
    out["overdue_not_due"] = f"CASE WHEN ({base}) = 1 AND NOT ({' OR '.join(late_now)}) THEN 1 ELSE 0 END"
    return out


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
    Date bounds cover whole Asia/Shanghai days; datetime bounds are instants. The same figures as
    :func:`live_stats`, read from the roll-up: the cost depends on the number of days and departments
    in the range, not on the number of tickets.
    """
    if principal.role == "department":
        department: str | None = principal.department or ""
    elif principal.sees_everything:
        department = None
    else:
        return []
    dialect = session.get_bind().dialect.name
    start, end = _bounds(date_from, end=False), _bounds(date_to, end=True)
    sql = _Sql(department)
    live = rollup.figures("tickets", dialect)
    whole = _whole_days(start, end)
    if whole is None:
        sql.add(live, "tickets", sql.discovered(start, end))
    else:
        first, stop = whole
        _add_folded(sql, first, stop)
        if start is not None and first is not None and start < _midnight(first):
            sql.add(live, "tickets", sql.discovered(start, _midnight(first)))
        if end is not None and stop is not None and _midnight(stop) < end:
            sql.add(live, "tickets", sql.discovered(_midnight(stop), end))
    now = sql.bind(clock.now(), UtcDateTime())
    # Tickets with a deadline still ahead: usually the last few days' tickets only. SQLite finds them
    # through each deadline's index only when asked for the union (it reads every ticket for an OR);
    # PostgreSQL combines the three indexes and the discovery range itself (bitmap OR/AND).
    ahead = [f"tickets.{STAGE_COLUMNS[stage]}_due >= {now}" for stage in STAGES]
    if dialect == "postgresql":
        ahead_sql = f"({' OR '.join(ahead)})"
    else:
        union = " UNION ".join(f"SELECT id FROM tickets WHERE {condition}" for condition in ahead)  # noqa: S608
        ahead_sql = f"tickets.id IN ({union})"
    sql.add(_not_due(dialect, now), "tickets", [*sql.discovered(start, end), ahead_sql])
    names = (*FIGURES, *CORRECTIONS)
    statement = text(
        f"SELECT part_key, {', '.join(f'SUM({n}) AS {n}' for n in names)} FROM "  # noqa: S608
        f"({' UNION ALL '.join(sql.parts)}) AS parts GROUP BY part_key HAVING SUM(n_total) > 0 "
        "ORDER BY part_key"
    ).bindparams(*sql.params)
    out = []
    for record in session.execute(statement):
        got = {name: int(value or 0) for name, value in zip(names, record[1:], strict=True)}
        got["overdue"] = got["overdue_base"] - got["overdue_not_due"]
        for stage in STAGES:
            prefix = STAGE_COLUMNS[stage]
            got[f"{prefix}_late_open"] = got[f"{prefix}_pending"] - got[f"{prefix}_not_due"]
        out.append(_row(record[0], got))
    return out


def daily_counts(session: Session, principal: Principal, first: date, days: int) -> list[int]:
    """Tickets the caller may see discovered on each of ``days`` Asia/Shanghai days from ``first`` (the trend).

    Merged tickets count as the one they joined (not again); read from the roll-up's day rows.
    """
    if principal.role == "department":
        department: str | None = principal.department or ""
    elif principal.sees_everything:
        department = None
    else:
        return [0] * days
    sql = _Sql(department)
    low, high = first.isoformat(), (first + timedelta(days=days)).isoformat()
    total = {"n_total": "n_total"}
    days_only = ["grain = 'D'", *sql.period("period", low, high)]
    sql.add(total, stats_rollup.name, days_only, names=("n_total",), key="period")
    sql.add(total, stats_delta.name, sql.period("day", low, high), names=("n_total",), key="day")
    parts = " UNION ALL ".join(sql.parts)
    statement = text(f"SELECT part_key, SUM(n_total) FROM ({parts}) AS parts GROUP BY part_key")  # noqa: S608
    totals = {row[0]: int(row[1] or 0) for row in session.execute(statement.bindparams(*sql.params))}
    return [totals.get((first + timedelta(days=n)).isoformat(), 0) for n in range(days)]


def _row(department: str, got: Mapping[str, int]) -> dict[str, Any]:
    """The API row from the integer sums (the same arithmetic for the roll-up and the live query)."""
    row: dict[str, Any] = {
        "department": department,
        "total": got["n_total"],
        "by_status": {s: got[f"status_{s}"] for s in transitions.STATUSES},
        "escalated": got["n_escalated"],
        "overdue": got["overdue"],
    }
    for stage in STAGES:
        prefix = STAGE_COLUMNS[stage]
        met = got[f"{prefix}_met"]
        decided = met + got[f"{prefix}_late_open"]
        row[f"{stage}_on_time_rate"] = round(got[f"{prefix}_in_time"] / decided, 4) if decided else None
        row[f"{stage}_avg_hours"] = round(got[f"{prefix}_ms"] / met / MS_PER_HOUR, 2) if met else None
    row["replied_before_discovery"] = got["replied_before"]
    found = got["discover_n"]
    row["avg_discover_hours"] = round(got["discover_ms"] / found / MS_PER_HOUR, 2) if found else None
    return row


def _ms(start: Any, end: Any, dialect: str) -> Any:
    """SQL for ``end - start`` in whole milliseconds, clamped at zero (see timing.elapsed)."""
    diff: Any
    if dialect == "postgresql":
        diff = func.extract("epoch", end - start)
    else:  # SQLite keeps naive UTC text, which julianday reads
        diff = (func.julianday(end) - func.julianday(start)) * 86400.0
    return case((diff < 0, 0), else_=cast(func.round(diff * 1000), BigInteger))


def live_stats(
    session: Session,
    principal: Principal,
    *,
    date_from: date | datetime | None = None,
    date_to: date | datetime | None = None,
) -> list[dict[str, Any]]:
    """:func:`stats` computed by one GROUP BY over the tickets of the range (cost grows with tickets)."""
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

    columns: dict[str, Any] = {"n_total": func.count()}
    for status in transitions.STATUSES:
        columns[f"status_{status}"] = count(Ticket.status == status)
    columns["n_escalated"] = count(Ticket.escalated.is_(True))
    columns["overdue"] = count(or_(*(late_clause(stage, now) for stage in STAGES)))
    for stage in STAGES:
        prefix = STAGE_COLUMNS[stage]
        due, met = getattr(Ticket, f"{prefix}_due"), getattr(Ticket, f"{prefix}_met_at")
        columns[f"{prefix}_met"] = count(met.is_not(None))
        columns[f"{prefix}_in_time"] = count(and_(met.is_not(None), met <= due))
        columns[f"{prefix}_late_open"] = count(
            and_(met.is_(None), due < now, Ticket.status.in_(ACK_NOT_WAIVED))
            if stage == "acknowledge"
            else and_(met.is_(None), due < now)
        )
        columns[f"{prefix}_ms"] = func.sum(case((met.is_not(None), _ms(Ticket.discovered_at, met, dialect)), else_=0))
    columns["replied_before"] = count(
        and_(Ticket.respond_met_at.is_not(None), Ticket.respond_met_at < Ticket.discovered_at)
    )
    published = Ticket.published_at.is_not(None)
    columns["discover_n"] = count(published)
    columns["discover_ms"] = func.sum(
        case((published, _ms(Ticket.published_at, Ticket.discovered_at, dialect)), else_=0)
    )
    names = list(columns)
    rows = session.execute(
        select(Ticket.department, *(columns[n].label(f"c{i}") for i, n in enumerate(names)))
        .where(*conditions)
        .group_by(Ticket.department)
        .order_by(Ticket.department)
    ).all()
    return [_row(record[0], {n: int(v or 0) for n, v in zip(names, record[1:], strict=True)}) for record in rows]
