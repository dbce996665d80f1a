"""Statistics roll-up kept current by the database itself.

Each ticket contributes the time-independent figures of the stats (service.models.FIGURES) to its
Asia/Shanghai day of discovery and department. Triggers on ``tickets`` (SQLite and PostgreSQL) append
the old row's figures negated and the new row's figures to ``ticket_stats_delta`` in the same
transaction as every write, whatever code path made it (actions, merge/split, reassignment, severity,
SLA marks, plain SQL): the roll-up cannot drift from the tickets. Appending never touches a shared
row, so concurrent ledger writers never lock each other. :func:`fold` moves the deltas into
``ticket_stats_rollup`` (day rows and month rows); readers add both, so folding late only costs time.

The SQL of one ticket's figures lives here once and is used by the triggers, the backfill and the
live part of a range (the partial days at its edges).

Every SQL text here is assembled from table and column names of this module and constant fragments;
values are always bound parameters (hence the S608 notes).
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from service.ledger.models import FIGURES, STAGE_COLUMNS, stats_delta, stats_rollup
from service.ledger.service import ACK_NOT_WAIVED
from service.vocabulary import STAGES, TICKET_STATUSES

# Writes to these columns can change a ticket's figures; other updates (version, next_due_at, texts)
# leave the roll-up alone.
WATCHED = (
    "status",
    "department",
    "discovered_at",
    "published_at",
    "escalated",
    "merged_into",
    *(f"{STAGE_COLUMNS[stage]}_{part}" for stage in STAGES for part in ("due", "met_at")),
)


def _flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def milliseconds(start: str, end: str, dialect: str) -> str:
    """SQL of ``end - start`` in whole milliseconds, clamped at zero (see timing.elapsed)."""
    if dialect == "postgresql":
        diff = f"EXTRACT(EPOCH FROM ({end} - {start}))"
    else:  # SQLite keeps naive UTC text, which julianday reads
        diff = f"((julianday({end}) - julianday({start})) * 86400.0)"
    return f"CASE WHEN {diff} < 0 THEN 0 ELSE CAST(ROUND({diff} * 1000) AS BIGINT) END"


def local_day(column: str, dialect: str) -> str:
    """SQL of the Asia/Shanghai calendar day of a UTC time column, as 'YYYY-MM-DD'."""
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"
    # Shanghai has kept UTC+8 without daylight saving since 1991. date() rounds to the millisecond: the text is
    # cut to whole milliseconds first, or 23:59:59.9996 would be filed under the next day (and month).
    return f"date(substr({column}, 1, 23), '+8 hours')"


def pending(t: str, stage: str) -> str:
    """SQL: ``stage`` of row ``t`` is unmet and still expected (it becomes late at its deadline)."""
    met = f"{t}.{STAGE_COLUMNS[stage]}_met_at"
    if stage == "acknowledge":  # only pending while the ticket waits for it (see timing.stage_waived)
        waiting = ", ".join(f"'{status}'" for status in ACK_NOT_WAIVED)
        return f"({met} IS NULL AND {t}.status IN ({waiting}))"
    return f"({met} IS NULL)"


def met_late(t: str, stage: str) -> str:
    prefix = STAGE_COLUMNS[stage]
    return f"({t}.{prefix}_met_at IS NOT NULL AND {t}.{prefix}_met_at > {t}.{prefix}_due)"


def figures(t: str, dialect: str) -> dict[str, str]:
    """Per FIGURES column, the SQL of the contribution of ticket row ``t`` (merged tickets excluded by callers)."""
    out = {"n_total": "1"}
    for status in TICKET_STATUSES:
        out[f"status_{status}"] = _flag(f"{t}.status = '{status}'")
    out["n_escalated"] = _flag(f"{t}.escalated")
    for stage in STAGES:
        prefix = STAGE_COLUMNS[stage]
        met, due = f"{t}.{prefix}_met_at", f"{t}.{prefix}_due"
        out[f"{prefix}_met"] = _flag(f"{met} IS NOT NULL")
        out[f"{prefix}_in_time"] = _flag(f"{met} IS NOT NULL AND {met} <= {due}")
        out[f"{prefix}_ms"] = (
            f"CASE WHEN {met} IS NOT NULL THEN {milliseconds(f'{t}.discovered_at', met, dialect)} ELSE 0 END"
        )
        out[f"{prefix}_pending"] = _flag(pending(t, stage))
    # Overdue at some time: met late, or pending (then late once its deadline passes; see statistics).
    out["overdue_base"] = _flag(" OR ".join([met_late(t, s) for s in STAGES] + [pending(t, s) for s in STAGES]))
    respond = f"{t}.respond_met_at"
    out["replied_before"] = _flag(f"{respond} IS NOT NULL AND {respond} < {t}.discovered_at")
    published = f"{t}.published_at"
    out["discover_n"] = _flag(f"{published} IS NOT NULL")
    out["discover_ms"] = (
        f"CASE WHEN {published} IS NOT NULL THEN {milliseconds(published, f'{t}.discovered_at', dialect)} ELSE 0 END"
    )
    assert tuple(out) == FIGURES
    return out


def _delta_insert(row: str, sign: str, dialect: str) -> str:
    values = figures(row, dialect)
    return (
        f"INSERT INTO {stats_delta.name} (day, department, {', '.join(FIGURES)}) VALUES "  # noqa: S608
        f"({local_day(f'{row}.discovered_at', dialect)}, {row}.department, "
        f"{', '.join(f'{sign}({values[name]})' for name in FIGURES)});"
    )


def install_triggers(conn: Connection) -> None:
    """Create the triggers on ``tickets`` that append every change of figures to the delta table."""
    dialect = conn.dialect.name
    watched = ", ".join(WATCHED)
    if dialect == "postgresql":
        conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION ticket_stats_delta_row() RETURNS trigger AS $$\nBEGIN\n"
                "IF TG_OP <> 'INSERT' AND OLD.merged_into IS NULL THEN\n"
                f"{_delta_insert('OLD', '-', dialect)}\nEND IF;\n"
                "IF TG_OP <> 'DELETE' AND NEW.merged_into IS NULL THEN\n"
                f"{_delta_insert('NEW', '', dialect)}\nEND IF;\n"
                "RETURN NULL;\nEND;\n$$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER ticket_stats_delta AFTER INSERT OR DELETE OR UPDATE OF {watched} "
                "ON tickets FOR EACH ROW EXECUTE FUNCTION ticket_stats_delta_row()"
            )
        )
        return
    for name, when, row, sign in (
        ("ticket_stats_insert", "AFTER INSERT", "NEW", ""),
        ("ticket_stats_delete", "AFTER DELETE", "OLD", "-"),
        ("ticket_stats_update_old", f"AFTER UPDATE OF {watched}", "OLD", "-"),
        ("ticket_stats_update_new", f"AFTER UPDATE OF {watched}", "NEW", ""),
    ):
        conn.execute(
            text(
                f"CREATE TRIGGER {name} {when} ON tickets FOR EACH ROW WHEN {row}.merged_into IS NULL "
                f"BEGIN {_delta_insert(row, sign, dialect)} END"
            )
        )


def drop_triggers(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER IF EXISTS ticket_stats_delta ON tickets"))
        conn.execute(text("DROP FUNCTION IF EXISTS ticket_stats_delta_row()"))
        return
    for name in ("ticket_stats_insert", "ticket_stats_delete", "ticket_stats_update_old", "ticket_stats_update_new"):
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


def _sums(prefix: str = "") -> str:
    return ", ".join(f"SUM({prefix}{name})" for name in FIGURES)


def _upsert(select_sql: str, dialect: str) -> str:
    """INSERT INTO the roll-up from ``select_sql`` (grain, period, department, figures...), adding on conflict."""
    table = stats_rollup.name
    adds = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in FIGURES)
    return (
        f"INSERT INTO {table} (grain, period, department, {', '.join(FIGURES)}) {select_sql} "
        f"ON CONFLICT (grain, period, department) DO UPDATE SET {adds}"
    )


def fold(session: Session) -> int:
    """Move the unfolded deltas into the day and month rows of the roll-up; how many deltas were moved.

    Run by the ledger's scheduled job (and after a backfill). Readers add roll-up and deltas, so the
    figures are the same before and after; folding keeps the number of rows a reader adds small.
    """
    return _fold(session.connection())


def _fold(conn: Connection) -> int:
    dialect = conn.dialect.name
    delta = stats_delta.name
    days = "SELECT 'D', day, department, {sums} FROM {source} GROUP BY day, department"
    months = "SELECT 'M', substr(day, 1, 7), department, {sums} FROM {source} GROUP BY substr(day, 1, 7), department"
    if dialect == "postgresql":
        # One statement: the rows deleted are exactly the rows summed (a delta committed meanwhile stays
        # for the next fold instead of being deleted unsummed).
        moved = conn.execute(
            text(
                f"WITH moved AS (DELETE FROM {delta} RETURNING *), "  # noqa: S608
                f"d AS ({_upsert(days.format(sums=_sums(), source='moved'), dialect)}), "
                f"m AS ({_upsert(months.format(sums=_sums(), source='moved'), dialect)}) "
                "SELECT count(*) FROM moved"
            )
        ).scalar_one()
        return int(moved)
    # SQLite has one writer at a time: nothing can commit between these statements.
    last, count = conn.execute(text(f"SELECT max(id), count(*) FROM {delta}")).one()  # noqa: S608
    if last is None:
        return 0
    source = f"{delta} WHERE id <= :last"
    for select_sql in (days, months):
        conn.execute(text(_upsert(select_sql.format(sums=_sums(), source=source), dialect)), {"last": last})
    conn.execute(text(f"DELETE FROM {delta} WHERE id <= :last"), {"last": last})  # noqa: S608
    return int(count)


def backfill(conn: Connection) -> None:
    """Fill the roll-up from the existing tickets (the migration; the triggers keep it current after)."""
    dialect = conn.dialect.name
    values = figures("tickets", dialect)
    columns = ", ".join(f"SUM({values[name]})" for name in FIGURES)
    day = local_day("tickets.discovered_at", dialect)
    conn.execute(
        text(
            f"INSERT INTO {stats_delta.name} (day, department, {', '.join(FIGURES)}) "  # noqa: S608
            f"SELECT {day}, tickets.department, {columns} FROM tickets WHERE tickets.merged_into IS NULL "
            f"GROUP BY {day}, tickets.department"
        )
    )
    _fold(conn)
