"""`yuqing export` from the database against a plain csv dump of the same query, and the API csv stream's memory.

Usage: ``python benchmarks/export_db.py [--tickets 10000 | --ledger FILE.sqlite3 | --url URL] [--rounds 5]
[--xlsx]``

The ledger: an existing one (``--ledger``, e.g. a copy kept by ``benchmarks/ledger_gen.py`` under
/tmp/yq-export-scale; ``--url`` for PostgreSQL), else ``--tickets`` generated into a temp SQLite file by that
generator (real rows: 1-3 items per ticket, stages met, timeline, merged tickets). Each round runs,
interleaved in a rotated order, on the year 2026:

- ``export_ledger(fmt="csv")``: what ``yuqing export --format csv`` calls (rows from a server-side cursor,
  masking, local times, labels, notes, overdue flags);
- "plain csv dump (same SQL)": the DB-API cursor executes the very SQL the export reads (its joined query,
  compiled by the product's :func:`ledger_select`) and ``csv.writer`` writes every row as it comes;
- "plain csv dump (per ticket)": one row per ticket with its items folded by the database (group_concat /
  string_agg), the floor this benchmark used before 2026-11-30 08:00.

Medians of CPU (this process; a PostgreSQL server's own CPU is not in it, for any side) and wall seconds;
goal: the export ≤ 5× the plain dump. Then the API's csv body generator is drained once under tracemalloc
(peak Python memory; goal < 50 MB growth at 100k tickets), and with ``--xlsx`` the API's xlsx path
(``export_ledger(fmt="xlsx")`` into a file). ``benchmarks/export_api.py`` measures the server process's RSS
through the real route.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from alerting.calendar import WorkCalendar
from alerting.sla import SlaConfig, SlaPolicy
from benchmarks.ledger_gen import chunk_rows
from service.clock import SHANGHAI
from service.db import Database
from service.exports.api import _csv_body
from service.exports.ledger_rows import day_bounds, ledger_select, ledger_where
from service.exports.service import export_ledger
from service.ledger.models import Ticket, TicketItem, TimelineEntry
from service.settings import Settings

FROM, TO = date(2026, 1, 1), date(2026, 12, 31)


def _driver_sql(db: Database) -> tuple[str, Any]:
    """The export's SQL as the driver receives it, with its parameters."""
    compiled = ledger_select(ledger_where(FROM, TO, None, SHANGHAI)).compile(dialect=db.engine.dialect)
    sqlite = db.engine.dialect.name == "sqlite"

    def value(v: Any) -> Any:
        # UtcDateTime stores naive UTC text on SQLite; psycopg takes aware datetimes as they are.
        if isinstance(v, datetime) and sqlite:
            return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return v

    params = compiled.params
    if compiled.positiontup is not None:
        return str(compiled), [value(params[k]) for k in compiled.positiontup]
    return str(compiled), {k: value(v) for k, v in params.items()}


def _dump(db: Database, path: Path, sql: str, params: Any) -> None:
    raw = db.engine.raw_connection()
    try:
        # A named (server-side) cursor on PostgreSQL, as the export's stream_results uses.
        cursor = raw.cursor(name="dump") if db.engine.dialect.name == "postgresql" else raw.cursor()  # type: ignore[call-arg]
        cursor.execute(sql, params)
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            for row in cursor:
                writer.writerow(row)
    finally:
        raw.close()


def _per_ticket_sql(db: Database) -> tuple[str, Any]:
    start, end = day_bounds(FROM, TO, SHANGHAI)
    if db.engine.dialect.name == "sqlite":
        fold = "group_concat(channel || source || coalesce(url, ''))"
        bounds: Any = [t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") for t in (start, end)]
        marks = ("?", "?")
    else:
        fold = "string_agg(channel || source || coalesce(url, ''), ',')"
        bounds, marks = {"a": start, "b": end}, ("%(a)s", "%(b)s")
    sql = (
        f"SELECT t.*, (SELECT {fold} FROM ticket_items i WHERE i.ticket_id = t.id) FROM tickets t "
        f"WHERE discovered_at >= {marks[0]} AND discovered_at < {marks[1]} AND merged_into IS NULL "
        "ORDER BY discovered_at, id"
    )
    return sql, bounds


def _generate(path: Path, tickets: int) -> Database:
    db = Database(f"sqlite:///{path}")
    db.migrate()
    policy = SlaPolicy(SlaConfig(), WorkCalendar())
    started = time.perf_counter()
    for first in range(0, tickets, 5000):
        rows = chunk_rows(first, min(tickets, first + 5000), policy)
        with db.engine.begin() as conn:
            for table, chunk in zip((Ticket, TicketItem, TimelineEntry), rows, strict=True):
                conn.execute(insert(table.__table__), chunk)
    print(f"{tickets} tickets written in {time.perf_counter() - started:.1f} s", flush=True)
    return db


def _interleave(sides: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    names = list(sides)
    out: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in names}
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            sides[name]()
            out[name][0].append(time.process_time() - cpu)
            out[name][1].append(time.perf_counter() - wall)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--ledger", type=Path, default=None, help="an existing SQLite ledger (read only)")
    parser.add_argument("--url", default=None, help="an existing ledger database URL (PostgreSQL)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--xlsx", action="store_true", help="also the API's xlsx path under tracemalloc (slow)")
    parser.add_argument("--no-per-ticket", action="store_true", help="skip the per-ticket dump (long runs at 1M)")
    parser.add_argument("--no-api", action="store_true", help="skip the API csv stream under tracemalloc")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings()
        settings.config_dir = Path(tmp)
        if args.url:
            db = Database(args.url)
        elif args.ledger:
            db = Database(f"sqlite:///{args.ledger}")
        else:
            db = _generate(Path(tmp) / "ledger.db", args.tickets)
        out = Path(tmp) / "out"
        out.mkdir()
        same_sql, per_ticket = _driver_sql(db), _per_ticket_sql(db)
        sides = {
            "yuqing export (csv)": lambda: export_ledger(
                db, settings, out / "e.csv", date_from=FROM, date_to=TO, fmt="csv"
            ),
            "plain csv dump (same SQL)": lambda: _dump(db, out / "p.csv", *same_sql),
            "plain csv dump (per ticket)": lambda: _dump(db, out / "q.csv", *per_ticket),
        }
        if args.no_per_ticket:
            del sides["plain csv dump (per ticket)"]
        times = _interleave(sides, args.rounds)
        with open(out / "e.csv", encoding="utf-8") as fh:
            lines = sum(1 for _ in fh) - 1
        print(f"{db.engine.dialect.name}: {lines} ledger rows, {args.rounds} interleaved rounds, medians")
        floor_cpu = {n: statistics.median(times[n][0]) for n in sides}
        floor_wall = {n: statistics.median(times[n][1]) for n in sides}
        for name in sides:
            ratios = "  ".join(
                f"{floor_cpu[name] / floor_cpu[base]:4.1f}x / {floor_wall[name] / floor_wall[base]:4.1f}x {base[15:]}"
                for base in sides
                if base.startswith("plain")
            )
            print(
                f"{name:28} CPU {floor_cpu[name]:7.2f} s  wall {floor_wall[name]:7.2f} s   CPU/wall ratio to {ratios}",
                flush=True,
            )
        if args.no_api:
            db.dispose()
            return
        ctx = SimpleNamespace(settings=settings, db=db)
        tracemalloc.start()
        body = _csv_body(ctx, FROM, TO, None)  # type: ignore[arg-type]
        size = sum(len(chunk) for chunk in body)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"API csv stream: {size / 2**20:.1f} MB sent, peak Python memory while streaming {peak:.1f} MB")
        if args.xlsx:
            tracemalloc.start()
            wall, before = time.perf_counter(), time.process_time()
            export_ledger(db, settings, out / "a.xlsx", date_from=FROM, date_to=TO)
            cpu_xlsx, wall = time.process_time() - before, time.perf_counter() - wall
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(
                f"API xlsx file: {(out / 'a.xlsx').stat().st_size / 2**20:.1f} MB written in {wall:.1f} s "
                f"({cpu_xlsx:.1f} s CPU, traced), peak Python memory while writing {peak:.1f} MB"
            )
        db.dispose()


if __name__ == "__main__":
    main()
