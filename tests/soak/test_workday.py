"""A working day, soaked (CI's few minutes of it): `yuqing run` under a day's traffic, on SQLite and PostgreSQL.

The full day is benchmarks/soak.py (figures in BENCHMARKS.md); this test runs the same driver briefly
and checks what must hold at any length: no answer 5xx, no `database is locked`, one audit record per
audited event, and a p99 latency under one second.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak.workday import run_day

pytestmark = pytest.mark.long_running(160)  # seconds in CI: starts first (tests/conftest.py)

# Long enough for several crawls, matches, SLA warnings and deliveries; short enough for CI.
SECONDS = 60
# The promise: p99 under one second for every request a person at a desk makes (SSE streams, which stay
# open by design, and the sign-ins before the day are not requests of the day). Measured over the whole
# day (about 500 requests), so the p99 is not one unlucky request. On a machine shared with other jobs the
# day runs at a raised CPU priority where allowed (workday.shielded): there, with neighbours using 1.8 of
# the 2 cores, the same product at normal priority measured p50 115-190 ms / p99 1.5 s, while it used
# only 0.12 cores itself (BENCHMARKS.md). The CPU figures and the slowest requests are printed.
P99_LIMIT = 1.0


def test_a_working_day_keeps_every_promise(tmp_path: Path, database_url: str) -> None:
    day = run_day(tmp_path, database_url, seconds=SECONDS, publish_every=5, crawl_interval="15s")
    summary = day.summary()
    print(f"soak {database_url.split(':')[0]}: {summary}")  # the figures, in the CI log
    for route, figures in day.routes().items():
        print(f"  {route}: {figures}")
    print("  slowest:", "; ".join(day.slowest()))
    assert day.server_errors == [], summary
    assert day.locked_lines == [], day.locked_lines[:5]
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
    assert day.percentile(99) < P99_LIMIT, (summary, day.routes())
    # Every scheduled job (crawl, matching, SLA monitor, notifications) last succeeded on time.
    assert day.health.get("status") == "ok", day.health
