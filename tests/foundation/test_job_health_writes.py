"""The scheduler's job-health bookkeeping costs the same with 5 sources or 500.

It runs on the scheduler's pool threads after every job (in queue mode: after every deferral of a crawl).
Writing every job's row each time made a city of 200 sources defer one crawl every few seconds on a
loaded machine, and most first crawls missed their misfire grace: dropped for a whole interval (a day).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import event

from service import clock
from service.db import Database
from service.scheduling.jobhealth import JobTracker, load_states, record_run

SOURCES = 300


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_one_job_run_writes_one_row_whatever_the_number_of_sources(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.migrate()
    try:
        crawls = [(f"crawl:s{n}", f"抓取 {n}", IntervalTrigger(days=1)) for n in range(SOURCES)]
        tracker = JobTracker(db)
        tracker.register([*crawls, ("sla-check", "时限监控", IntervalTrigger(minutes=1))])
        assert len(load_states(db)) == SOURCES + 1

        ran = clock.now()
        with statements(db) as seen:
            tracker.succeeded("crawl:s7", ran)
            assert tracker.flush(read_back=False)
        assert len(seen) <= 3, seen  # the row read and written, not the other 300
        assert {s.job_id: s.last_success for s in load_states(db)}["crawl:s7"] == ran

        with statements(db) as seen:
            assert tracker.flush(read_back=False)
        assert seen == []  # nothing changed, nothing written
    finally:
        db.dispose()


def test_queued_jobs_read_the_workers_runs_in_one_query(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.migrate()
    try:
        crawls = [(f"crawl:s{n}", f"抓取 {n}", IntervalTrigger(days=1)) for n in range(SOURCES)]
        tracker = JobTracker(db)
        tracker.register(crawls, external=frozenset(job_id for job_id, _, _ in crawls))
        ran = clock.now()
        record_run(db, "crawl:s9", succeeded=ran)

        # A deferral by the scheduler is not a run: nothing to write after it.
        with statements(db) as seen:
            tracker.succeeded("crawl:s9", ran)
            assert tracker.flush(read_back=False)
        assert seen == []

        # The watchdog round sees what the worker recorded, reading all queued jobs at once.
        with statements(db) as seen:
            assert tracker.flush()
        assert len(seen) == 1, seen
        assert {s.job_id: s.last_success for s in tracker.snapshot()}["crawl:s9"] == ran
    finally:
        db.dispose()
