"""A working day, soaked (CI's few minutes of it): `yuqing run` under a day's traffic, on SQLite and PostgreSQL.

The full day is benchmarks/soak.py (figures in BENCHMARKS.md); this test runs the same driver briefly
and checks what must hold at any length: no answer 5xx, no `database is locked`, one audit record per
audited event, and a p99 latency under one second.

The two days run side by side, each with its own product, demo site, webhook receiver and database: CI
waits one day instead of two, and each product keeps its promises with the other's day running beside it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.soak.workday import DayResult, run_day

pytestmark = [pytest.mark.postgres, pytest.mark.long_running(90)]  # seconds in CI: starts first (tests/conftest.py)

# Long enough for several crawls, matches, SLA warnings and deliveries; short enough for CI.
SECONDS = 60
# The promise: p99 under one second for every request a person at a desk makes (SSE streams, which stay
# open by design, and the sign-ins before the day are not requests of the day). Measured over the whole
# day (about 500 requests), so the p99 is not one unlucky request. On a machine shared with other jobs the
# day runs at a raised CPU priority where allowed (workday.shielded): there, with neighbours using 1.8 of
# the 2 cores, the same product at normal priority measured p50 115-190 ms / p99 1.5 s, while it used
# only 0.12 cores itself (BENCHMARKS.md). The CPU figures and the slowest requests are printed.
P99_LIMIT = 1.0


def test_a_working_day_keeps_every_promise_on_sqlite_and_on_postgresql(
    tmp_path: Path, postgres_database_url: str
) -> None:
    urls = {"sqlite": f"sqlite:///{tmp_path / 'sqlite' / 'ledger.db'}", "postgres": postgres_database_url}
    for kind in urls:
        (tmp_path / kind).mkdir()
    together = threading.Barrier(len(urls))
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        running = {
            kind: pool.submit(
                run_day,
                tmp_path / kind,
                url,
                seconds=SECONDS,
                publish_every=5,
                crawl_interval="15s",
                start_together=together,
            )
            for kind, url in urls.items()
        }
        days = {kind: future.result() for kind, future in running.items()}
    for kind, day in days.items():
        # The figures, in the CI log. Side by side, "driver" is both days' driver (one process) and the other
        # day's product counts among the "neighbours".
        print(f"soak {kind}: {day.summary()}")
        for route, figures in day.routes().items():
            print(f"  {route}: {figures}")
        print("  slowest:", "; ".join(day.slowest()))
    for kind, day in days.items():
        check_day(kind, day)


def check_day(kind: str, day: DayResult) -> None:
    """What one day must show; ``kind`` names the database in every failure."""
    summary = {"database": kind, **day.summary()}
    assert day.server_errors == [], summary
    assert day.locked_lines == [], (kind, day.locked_lines[:5])
    # The day did happen: work orders were crawled, matched and pushed; tickets were worked and streamed.
    assert day.alerts > 0, summary
    assert day.stream_events > 0, summary
    assert day.webhook_messages > 0, summary
    assert day.statuses[200] > 0, summary
    assert day.ticket_actions > 0, summary
    # One audit record per audited event: every ticket action (done or refused), every refused escalation,
    # every answer that showed an admin personal data.
    assert day.audited.get("ticket_action", 0) == day.ticket_actions, summary
    assert day.audited.get("authz_denied", 0) == day.leader_denials, summary
    assert day.reveals_expected > 0, summary
    assert day.audited.get("personal_data.reveal", 0) == day.reveals_expected, summary
    assert day.requests() >= 300, summary  # enough requests for a p99 to mean something
    assert day.percentile(99) < P99_LIMIT, (summary, day.routes(), day.slowest())
    # Every scheduled job (crawl, matching, SLA monitor, notifications) last succeeded on time.
    assert day.health.get("status") == "ok", (kind, day.health)
