"""The scheduler's job-health bookkeeping costs the same with 5 sources or 500.

It runs on the scheduler's pool threads after every job (in queue mode: after every deferral of a crawl).
Writing every job's row each time made a city of 200 sources defer one crawl every few seconds on a
loaded machine, and most first crawls missed their misfire grace: dropped for a whole interval (a day).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import event

from service import clock, context
from service.app import build_scheduler
from service.context import AppContext
from service.db import Database
from service.scheduling.jobhealth import JobTracker, load_states, record_run
from service.scheduling.scheduler import Scheduler
from service.settings import load_settings

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


# A city's crawl jobs: one per source, daily.
CRAWLS = [(f"crawl:s{n}", f"抓取 {n}", IntervalTrigger(days=1)) for n in range(SOURCES)]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    database.migrate()
    yield database
    database.dispose()


def test_one_job_run_writes_one_row_whatever_the_number_of_sources(db: Database) -> None:
    tracker = JobTracker(db)
    tracker.register([*CRAWLS, ("sla-check", "时限监控", IntervalTrigger(minutes=1))])
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


def test_queued_jobs_read_the_workers_runs_in_one_query(db: Database) -> None:
    tracker = JobTracker(db)
    tracker.register(CRAWLS, external=frozenset(job_id for job_id, _, _ in CRAWLS))
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


@pytest.fixture
def scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scheduler]:
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    ctx = AppContext.create(load_settings(config))
    ctx.db.migrate()
    context.set_current(ctx)
    sched = build_scheduler(ctx)  # every domain's jobs, as `yuqing run` has them
    sched.start()
    yield sched
    sched.shutdown()
    ctx.close()


def test_a_finished_job_leaves_its_health_to_the_writer_thread(scheduler: Scheduler) -> None:
    """The pool thread that ran a job goes back to running due jobs at once: no database write on it (a
    write waiting on a locked database would hold the next due jobs past their misfire grace)."""
    db = scheduler.ctx.db
    job_id = "audit-retention"  # daily: it does not run by itself during the test
    assert job_id in scheduler.tracker.states
    done = clock.now()
    threads: list[int] = []

    def note(*_: object) -> None:
        threads.append(threading.get_ident())

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        # What APScheduler calls on the pool thread of a job that finished.
        scheduler._on_event(JobExecutionEvent(EVENT_JOB_EXECUTED, job_id, "default", done))
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert threading.get_ident() not in threads
    deadline = time.monotonic() + 90  # wide: a loaded 2-core machine
    while time.monotonic() < deadline:
        if any(s.job_id == job_id and s.last_success and s.last_success >= done for s in load_states(db)):
            return
        time.sleep(0.2)
    raise AssertionError("the job's success was never written")
