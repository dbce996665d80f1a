"""Ledger statistics at 100k tickets: GET /api/v1/stats's aggregation against a bare GROUP BY count.

Usage: ``python benchmarks/stats.py [--tickets 100000] [--rounds 5]``

Tickets are written through the product's own batch path (``open_or_attach_many``) into a fresh
SQLite ledger, a third of them acknowledged, spread over a year and 200 departments. Each round runs
``stats()`` over all time and over one month, and a plain ``SELECT department, count(*) ... GROUP BY``
(the floor), interleaved; medians are printed. Goal: any range under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select, update

from alerting.calendar import WorkCalendar
from alerting.sla import SlaConfig, SlaPolicy
from service.db import Database
from service.ledger.batch import Opening, open_or_attach_many
from service.ledger.models import Ticket
from service.ledger.service import ItemRef
from service.ledger.statistics import stats
from service.principal import Principal

OFFICER = Principal(user_id=1, username="bench", role="officer")
START = datetime(2026, 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    policy = SlaPolicy(SlaConfig(), WorkCalendar())
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        db.migrate()
        started = time.perf_counter()
        for chunk in range(0, args.tickets, 2000):
            openings = []
            for n in range(chunk, min(chunk + 2000, args.tickets)):
                at = START + timedelta(minutes=n * 5)
                openings.append(
                    Opening(
                        title=f"工单{n}",
                        severity=("minor", "normal", "major", "critical")[n % 4],
                        department=f"d{n % 200:03d}",
                        item=ItemRef(item_id=f"i{n}", source="bench", channel="hotline"),
                        discovered_at=at,
                        published_at=at - timedelta(hours=2),
                    )
                )
            with db.session() as session:
                open_or_attach_many(session, openings, policy=policy)
        with db.session() as session:
            session.execute(
                update(Ticket).where(Ticket.id % 3 == 0).values(status="acknowledged", ack_met_at=Ticket.ack_due)
            )
        print(f"{args.tickets} tickets written in {time.perf_counter() - started:.1f} s")
        month = (date(2026, 3, 1), date(2026, 3, 31))
        sides = {
            "stats all time": lambda s: stats(s, OFFICER),
            "stats one month": lambda s: stats(s, OFFICER, date_from=month[0], date_to=month[1]),
            "bare GROUP BY count": lambda s: s.execute(
                select(Ticket.department, func.count()).group_by(Ticket.department)
            ).all(),
        }
        times: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        for round_no in range(args.rounds):
            for name in names[round_no % 3 :] + names[: round_no % 3]:
                with db.session() as session:
                    started = time.perf_counter()
                    sides[name](session)
                    times[name].append(time.perf_counter() - started)
        floor = statistics.median(times["bare GROUP BY count"])
        for name in names:
            median = statistics.median(times[name])
            worst = max(times[name]) * 1000
            print(f"{name:22} median {median * 1000:8.1f} ms  max {worst:8.1f} ms  {median / floor:5.1f}x")
        db.dispose()


if __name__ == "__main__":
    main()
