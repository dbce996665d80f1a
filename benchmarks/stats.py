"""Ledger statistics: GET /api/v1/stats from the roll-up against the live GROUP BY, per range; write cost.

Usage: ``python benchmarks/stats.py [--tickets 100000] [--rounds 7] [--postgres | --database-url URL]``

Tickets are written through the product's own batch path (``open_or_attach_many``) into a fresh ledger
(SQLite by default; ``--postgres`` starts a throwaway PostgreSQL from tests/servers), a third of them
then acknowledged, a ninth handled, spread evenly over the year 2026 and 200
departments; the roll-up deltas are folded once, as the scheduled job does every minute; the clock then
stands at 2027-01-01 00:00 Shanghai. Each round
runs, in rotating order, ``stats()`` (roll-up) and ``live_stats()`` (the former single GROUP BY, the
baseline) for: all time, one year, one month, one week, and a range crossing days mid-day; medians,
max and the ratio roll-up / live are printed, with the wall clock's CPU share. Then the price of the
triggers: a batch of 1,000 new tickets and an UPDATE acknowledging 1,000 tickets, with and without the
triggers, interleaved. Also the dashboard's other ledger aggregates: the 90-day trend's tickets per day (roll-up
against the former per-day count over the tickets) and the region chart for a year (the GROUP BY over the
regions kept on the item links, against the former read of the newest 5,000 tickets as objects, which left out
the place extraction it then did). Goal: any range under 1 s (p99) at 100k tickets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select, update

from alerting.calendar import WorkCalendar
from alerting.sla import SlaConfig, SlaPolicy
from service import clock
from service.db import Database, count_by_day
from service.ledger import rollup
from service.ledger.batch import Opening, open_or_attach_many
from service.ledger.models import Ticket, stats_delta, stats_rollup
from service.ledger.regions import region_counts
from service.ledger.service import ItemRef, list_tickets
from service.ledger.statistics import daily_counts, live_stats, stats
from service.principal import Principal
from tests.servers.postgres import postgres_server

OFFICER = Principal(user_id=1, username="bench", role="officer")
START = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = SlaPolicy(SlaConfig(), WorkCalendar())


class _NoItems:
    """An item store without the benchmark's items: regions come from the ticket titles."""

    def get_many(self, item_ids: list[str]) -> list[Any]:
        return []


STORE: Any = _NoItems()
RANGES: dict[str, dict[str, Any]] = {
    "all time": {},
    "one year": {"date_from": date(2026, 1, 1), "date_to": date(2026, 12, 31)},
    "one month": {"date_from": date(2026, 3, 1), "date_to": date(2026, 3, 31)},
    "one week": {"date_from": date(2026, 6, 8), "date_to": date(2026, 6, 14)},
    "mid-day to mid-day": {
        "date_from": datetime(2026, 4, 3, 14, 30, tzinfo=clock.SHANGHAI),
        "date_to": datetime(2026, 5, 20, 9, 15, tzinfo=clock.SHANGHAI),
    },
}


def openings(first: int, count: int, total: int, prefix: str = "i") -> list[Opening]:
    """Tickets ``first``.. of ``total`` spread evenly over the year 2026 (100k: one every 5.3 minutes)."""
    out = []
    for n in range(first, first + count):
        at = START + timedelta(minutes=n * 525_600 / total)
        out.append(
            Opening(
                title=f"工单{n}",
                severity=("minor", "normal", "major", "critical")[n % 4],
                department=f"d{n % 200:03d}",
                item=ItemRef(item_id=f"{prefix}{n}", source="bench", channel="hotline"),
                discovered_at=at,
                published_at=at - timedelta(hours=2),
            )
        )
    return out


@contextmanager
def database(args: argparse.Namespace) -> Iterator[Database]:
    if args.database_url:
        db = Database(args.database_url)
        db.migrate()
        yield db
        db.dispose()
        return
    if args.postgres:
        with postgres_server() as url:
            db = Database(url)
            db.migrate()
            yield db
            db.dispose()
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        db.migrate()
        yield db
        db.dispose()


def timed(db: Database, work: Callable[[Any], object]) -> tuple[float, float]:
    with db.session() as session:
        wall, cpu = time.perf_counter(), time.process_time()
        work(session)
        return time.perf_counter() - wall, time.process_time() - cpu


def write_cost(db: Database, rounds: int, tickets: int) -> None:
    """Insert 1,000 tickets and acknowledge 1,000, with the triggers and without, interleaved."""
    times: dict[str, list[float]] = {}
    serial = [tickets * 2]

    def insert(session: Any) -> None:
        open_or_attach_many(session, openings(serial[0], 1000, tickets, prefix="w"), policy=POLICY)
        serial[0] += 1000

    def acknowledge(session: Any) -> None:
        low = serial[0] - 1000
        session.execute(
            update(Ticket)
            .where(Ticket.event_key.in_([f"item:w{n}" for n in range(low, low + 1000)]))
            .values(status="acknowledged", ack_met_at=Ticket.ack_due)
        )

    for round_no in range(rounds):
        for triggers in [True, False] if round_no % 2 == 0 else [False, True]:
            with db.engine.begin() as conn:
                rollup.drop_triggers(conn)
                if triggers:
                    rollup.install_triggers(conn)
            label = "with triggers" if triggers else "no triggers"
            for name, work in (("insert 1000", insert), ("acknowledge 1000", acknowledge)):
                times.setdefault(f"{name} {label}", []).append(timed(db, work)[0])
    with db.engine.begin() as conn:  # leave the database as the product has it: triggers and a true roll-up
        rollup.drop_triggers(conn)
        conn.execute(stats_rollup.delete())
        conn.execute(stats_delta.delete())
        rollup.backfill(conn)  # the tickets written without triggers were never counted
        rollup.install_triggers(conn)
    for name in ("insert 1000", "acknowledge 1000"):
        with_t = statistics.median(times[f"{name} with triggers"])
        without = statistics.median(times[f"{name} no triggers"])
        print(
            f"{name:18} with triggers {with_t * 1000:7.1f} ms  without {without * 1000:7.1f} ms",
            f"{with_t / without:4.2f}x",
        )


def acknowledge_some(session: Any) -> None:
    """A third acknowledged at their deadline, a ninth handled: plain UPDATEs, which the triggers see too."""
    session.execute(update(Ticket).where(Ticket.id % 3 == 0).values(status="acknowledged", ack_met_at=Ticket.ack_due))
    session.execute(
        update(Ticket).where(Ticket.id % 9 == 0).values(status="handled", handle_met_at=Ticket.ack_due, handled=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL (tests/servers)")
    parser.add_argument(
        "--database-url", default=None, help="an empty database to fill (or filled, with --measure-only)"
    )
    parser.add_argument("--measure-only", action="store_true", help="the database is filled already: only measure")
    args = parser.parse_args()
    with database(args) as db:
        started = time.perf_counter()
        for chunk in range(0, 0 if args.measure_only else args.tickets, 2000):
            with db.session() as session:
                batch = openings(chunk, min(2000, args.tickets - chunk), args.tickets)
                open_or_attach_many(session, batch, policy=POLICY)
        if args.measure_only:  # an earlier run's write-cost rounds may have left tickets out of the roll-up
            with db.engine.begin() as conn:
                conn.execute(stats_rollup.delete())
                conn.execute(stats_delta.delete())
                rollup.backfill(conn)
        with db.session() as session:
            if args.measure_only:
                args.tickets = session.execute(select(func.count()).select_from(Ticket)).scalar_one()
            else:
                acknowledge_some(session)
        with db.session() as session:
            folded = rollup.fold(session)
        # "Now" is the end of the year the tickets span, as for a city with a year of history: only the
        # last weeks' tickets have a deadline still ahead (read live), none is discovered in the future.
        clock.set_clock(clock.FrozenClock(datetime(2027, 1, 1, tzinfo=clock.SHANGHAI)))
        print(f"{db.engine.dialect.name}: {args.tickets} tickets written in {time.perf_counter() - started:.1f} s")
        print(f"{folded} deltas folded; now = {clock.now():%Y-%m-%d %H:%M} UTC")
        sides: dict[str, Callable[[Any], object]] = {}
        for label, bounds in RANGES.items():
            sides[f"rollup {label}"] = lambda s, b=bounds: stats(s, OFFICER, **b)
            sides[f"live   {label}"] = lambda s, b=bounds: live_stats(s, OFFICER, **b)
        first = clock.to_local(clock.now()).date() - timedelta(days=89)
        since = datetime(first.year, first.month, first.day, tzinfo=clock.SHANGHAI)
        sides["rollup trend 90 days"] = lambda s: daily_counts(s, OFFICER, first, 90)
        sides["live   trend 90 days"] = lambda s: count_by_day(
            s, Ticket.discovered_at, since, 90, Ticket.merged_into.is_(None)
        )
        # The region chart: one GROUP BY over the regions kept on the links (filled once before the rounds)
        # against the former path, which only read the newest 5,000 tickets of the year as objects.
        sides["rollup regions, year"] = lambda s: region_counts(s, STORE, OFFICER, **RANGES["one year"])
        sides["live   regions, year"] = lambda s: list_tickets(s, OFFICER, **RANGES["one year"], page=1, size=5000)
        with db.session() as session:
            region_counts(session, STORE, OFFICER)  # the one-off fill of every link's region
        with db.session() as session:
            for label, bounds in RANGES.items():
                assert stats(session, OFFICER, **bounds) == live_stats(session, OFFICER, **bounds), label
            assert sides["rollup trend 90 days"](session) == sides["live   trend 90 days"](session)
        walls: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        for round_no in range(args.rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                wall, cpu = timed(db, sides[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
        for label in [*RANGES, "trend 90 days", "regions, year"]:
            live = statistics.median(walls[f"live   {label}"])
            for side in ("rollup", "live  "):
                name = f"{side} {label}"
                median = statistics.median(walls[name])
                print(
                    f"{name:30} median {median * 1000:8.1f} ms  max {max(walls[name]) * 1000:8.1f} ms  "
                    f"cpu {statistics.median(cpus[name]) * 1000:8.1f} ms  {median / live:6.3f}x live"
                )
        write_cost(db, max(3, args.rounds // 2), args.tickets)


if __name__ == "__main__":
    main()
