"""`yuqing export` from the database against a plain csv dump of the same query, and the API csv stream's memory.

Usage: ``python benchmarks/export_db.py [--tickets 100000] [--rounds 3]``

Tickets are written through the product's batch path into a fresh SQLite ledger (one item each). Each round
runs, interleaved: ``export_ledger(fmt="csv")`` (what ``yuqing export`` calls: rows from a server-side
cursor, masking, local times, labels) and ``csv.writer`` over ``SELECT <the same columns> FROM tickets`` with
the same filter and order (the floor). Medians of CPU seconds; goal ≤ 5×. Then the API's csv body generator
is drained once and the peak of Python's traced memory while it ran is printed (goal < 50 MB at 100k), and
the same for the API's xlsx path (``export_ledger(fmt="xlsx")`` into a file, which the route then sends with
``FileResponse``), with its wall and CPU time. Run it at 1k / 10k / 100k tickets for the cost growth.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerting.calendar import WorkCalendar
from alerting.sla import SlaConfig, SlaPolicy
from service.db import Database
from service.exports.api import _csv_body
from service.exports.service import export_ledger
from service.ledger.batch import Opening, open_or_attach_many
from service.ledger.service import ItemRef
from service.settings import Settings

START = datetime(2026, 1, 1, tzinfo=UTC)


def plain_dump(db: Database, path: Path) -> None:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(
            "SELECT t.*, (SELECT group_concat(channel || source || coalesce(url, '')) FROM ticket_items i "
            "WHERE i.ticket_id = t.id) FROM tickets t WHERE discovered_at >= ? AND discovered_at < ? "
            "AND merged_into IS NULL ORDER BY discovered_at, id",
            ("2025-12-31 16:00:00.000000", "2027-01-01 00:00:00.000000"),
        )
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            for row in cursor:
                writer.writerow(row)
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    policy = SlaPolicy(SlaConfig(), WorkCalendar())
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings()
        settings.config_dir = Path(tmp)
        db = Database(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        db.migrate()
        started = time.perf_counter()
        for chunk in range(0, args.tickets, 2000):
            openings = [
                Opening(
                    title=f"关于化工厂夜间排污的投诉{n}，联系电话138{n:08d}",
                    severity=("minor", "normal", "major", "critical")[n % 4],
                    department=f"d{n % 200:03d}",
                    item=ItemRef(item_id=f"i{n}", source="bench", channel="hotline", url=f"https://x.cn/{n}"),
                    discovered_at=START + timedelta(minutes=n * 5),
                )
                for n in range(chunk, min(chunk + 2000, args.tickets))
            ]
            with db.session() as session:
                open_or_attach_many(session, openings, policy=policy)
        print(f"{args.tickets} tickets written in {time.perf_counter() - started:.1f} s", flush=True)
        out = Path(tmp) / "out"
        out.mkdir()
        sides = {
            "yuqing export (csv)": lambda: export_ledger(
                db, settings, out / "e.csv", date_from=date(2026, 1, 1), date_to=date(2026, 12, 31), fmt="csv"
            ),
            "plain csv dump": lambda: plain_dump(db, out / "p.csv"),
        }
        names = list(sides)
        cpu: dict[str, list[float]] = {n: [] for n in names}
        for round_no in range(args.rounds):
            for name in names[round_no % 2 :] + names[: round_no % 2]:
                before = time.process_time()
                sides[name]()
                cpu[name].append(time.process_time() - before)
        floor = statistics.median(cpu["plain csv dump"])
        for name in names:
            median = statistics.median(cpu[name])
            print(f"{name:22} median {median:7.2f} s CPU  {median / floor:5.1f}x")
        ctx = SimpleNamespace(settings=settings, db=db)
        tracemalloc.start()
        body = _csv_body(ctx, date(2026, 1, 1), date(2026, 12, 31), None)  # type: ignore[arg-type]
        size = sum(len(chunk) for chunk in body)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"API csv stream: {size / 2**20:.1f} MB sent, peak Python memory while streaming {peak:.1f} MB")
        tracemalloc.start()
        wall, before = time.perf_counter(), time.process_time()
        export_ledger(db, settings, out / "a.xlsx", date_from=date(2026, 1, 1), date_to=date(2026, 12, 31))
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
