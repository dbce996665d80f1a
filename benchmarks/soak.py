"""A working day, accelerated: `yuqing run` under a day's traffic, on SQLite and on PostgreSQL.

Usage: ``python benchmarks/soak.py [--minutes 6] [--items 480] [--crawl-interval 15s] [--backend sqlite,postgres]
[--rounds 1]``

The day's volume (by default 480 new 12345 work orders, one a minute for eight office hours) is published on
the bundled demo site within ``--minutes``; the product crawls it every ``--crawl-interval`` (each crawl is a
Scrapy subprocess: 15 s compresses the usual 15 minutes 60-fold, the harshest part of the day), matches,
runs the SLA monitor (minute-scale deadlines) and notifies a local webhook, while officers poll and hold SSE
streams, department users work and race on their tickets, a leader is refused and an admin reads personal
data (the driver is tests/soak/workday.py, the same as the CI soak test).

Baseline, in the same run and interleaved round by round: the same callers against a quiet product (no new
work orders, crawls once an hour). The ratio busy/quiet of the p99 latency says what the background work
(crawl subprocesses, matching, SLA monitor, deliveries) costs the people at their desks. Promise: p99 < 1 s,
0 answers 5xx, 0 `database is locked`, one audit record per audited event.

The day runs at a raised CPU priority where allowed (root or CAP_SYS_NICE; see tests/soak/workday.py
``shielded``), so on a machine shared with other jobs the figures are this product's. ``--unshielded-too``
adds, per round, the busy day at normal priority: the ratio says what the neighbours' load costs. Each day
prints where the CPU went (cores: product, crawl processes, driver, neighbours) and latency per route.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers.postgres import postgres_server
from tests.soak.workday import DayResult, run_day


def _fresh_postgres(server_url: str, n: int) -> str:
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"soak_{n}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _check(day: DayResult) -> list[str]:
    problems = []
    if day.server_errors:
        problems.append(f"{len(day.server_errors)} answers 5xx / transport errors: {day.server_errors[:3]}")
    if day.locked_lines:
        problems.append(f"{len(day.locked_lines)} 'database is locked' log lines")
    if day.audited.get("ticket_action", 0) != day.ticket_actions:
        problems.append(f"ticket_action records {day.audited.get('ticket_action', 0)} != actions {day.ticket_actions}")
    if day.audited.get("personal_data.reveal", 0) != day.reveals_expected:
        problems.append(f"reveal records {day.audited.get('personal_data.reveal', 0)} != {day.reveals_expected}")
    if day.audited.get("authz_denied", 0) != day.leader_denials:
        problems.append(f"denial records {day.audited.get('authz_denied', 0)} != {day.leader_denials}")
    if day.percentile(99) >= 1.0:
        problems.append(f"p99 {day.percentile(99) * 1000:.0f} ms >= 1 s")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="length of the accelerated day")
    parser.add_argument("--items", type=int, default=480, help="work orders published during the day")
    parser.add_argument("--crawl-interval", default="15s", help="crawl period during the busy day")
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--unshielded-too",
        action="store_true",
        help="also run each busy day at the machine's normal CPU priority (what neighbours' load costs)",
    )
    args = parser.parse_args()
    seconds = args.minutes * 60
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    print(f"load average at start: {os.getloadavg()}")
    failures = 0
    with ExitStack() as stack:
        pg = stack.enter_context(postgres_server()) if "postgres" in backends else None
        for backend in backends:
            p99s: dict[str, list[float]] = {}
            for n in range(args.rounds):
                kinds = ("busy", "busy-unshielded", "quiet") if args.unshielded_too else ("busy", "quiet")
                for kind in kinds:  # interleaved: all see the same machine
                    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"soak-{backend}-")))
                    url = f"sqlite:///{tmp / 'ledger.db'}" if backend == "sqlite" else _fresh_postgres(pg, n)
                    busy = kind.startswith("busy")
                    day = run_day(
                        tmp,
                        url,
                        seconds=seconds,
                        publish_every=seconds / args.items if busy else seconds * 10,
                        crawl_interval=args.crawl_interval if busy else "1h",
                        shield=kind != "busy-unshielded",
                    )
                    summary = day.summary()
                    p99s.setdefault(kind, []).append(day.percentile(99))
                    problems = _check(day) if kind == "busy" else []
                    failures += bool(problems)
                    print(f"{backend:8} {kind:15} round {n + 1}: {summary}")
                    for route, figures in day.routes().items():
                        print(f"{'':8} {route:45} {figures}")
                    print(f"{'':8} slowest: {'; '.join(day.slowest(5))}")
                    print(f"{'':8} health at the end: {day.health.get('status')} {day.health.get('reasons', '')}")
                    for problem in problems:
                        print(f"{'':8} PROBLEM: {problem}")
            busy_p99, quiet_p99 = statistics.median(p99s["busy"]), statistics.median(p99s["quiet"])
            print(
                f"{backend:8} p99 busy {busy_p99 * 1000:.0f} ms, quiet {quiet_p99 * 1000:.0f} ms, "
                f"ratio busy/quiet {busy_p99 / quiet_p99 if quiet_p99 else float('nan'):.2f}"
            )
            if "busy-unshielded" in p99s:
                unshielded = statistics.median(p99s["busy-unshielded"])
                print(
                    f"{backend:8} p99 busy at normal priority {unshielded * 1000:.0f} ms, "
                    f"ratio unshielded/shielded {unshielded / busy_p99 if busy_p99 else float('nan'):.2f}"
                )
    print(f"load average at end: {os.getloadavg()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
