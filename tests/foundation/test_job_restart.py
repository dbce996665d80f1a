"""A scheduler started after hours switched off does not call its jobs stalled: their last success is from
before it existed. A job that then fails to run for its intervals is stalled as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.triggers.interval import IntervalTrigger

from service import clock
from service.db import Database
from service.scheduling.jobhealth import JobTracker, load_states

FACTOR = 3.0


def test_a_restart_after_a_night_off_reports_no_stall_until_the_jobs_had_time(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.migrate()
    evening = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    previous = clock.get_clock()
    frozen = clock.FrozenClock(evening)
    clock.set_clock(frozen)
    try:
        yesterday = JobTracker(db)
        yesterday.register([("sla-check", "时限监控", IntervalTrigger(minutes=1))])
        yesterday.succeeded("sla-check", evening)
        yesterday.flush()

        frozen.set(evening + timedelta(hours=14))  # the next morning, a new process
        morning = JobTracker(db)
        morning.register([("sla-check", "时限监控", IntervalTrigger(minutes=1))])
        now = clock.now()
        (state,) = morning.snapshot()
        assert state.last_success == evening  # history kept
        assert not state.stale(now, FACTOR)
        assert [s.public(now, FACTOR)["status"] for s in load_states(db)] == ["ok"]

        # The job never runs in this process: stalled after its intervals, as always.
        later = now + timedelta(minutes=4)
        assert state.stale(later, FACTOR)
    finally:
        clock.set_clock(previous)
        db.dispose()
