"""The scheduler: persisted jobs with explicit misfire handling, and one scheduler per database."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger
from sqlalchemy import inspect

from service import clock
from service.context import AppContext
from service.scheduling import registry
from service.scheduling.lease import Lease, LeaseHeld
from service.scheduling.models import SchedulerLease
from service.scheduling.registry import JobSpec
from service.scheduling.scheduler import Scheduler
from service.settings import load_settings

CALLS: list[str] = []


def record_call() -> None:
    CALLS.append("ran")


def sample_jobs(settings) -> list[JobSpec]:
    return [JobSpec(id="sample", func=f"{__name__}:record_call", trigger=IntervalTrigger(hours=1))]


@pytest.fixture
def ctx(config_dir: Path, data_dir: Path, database_url: str):
    settings = load_settings(config_dir)
    settings.database.url = database_url
    app_ctx = AppContext.create(settings)
    app_ctx.db.migrate()
    registry.register(f"{__name__}:sample_jobs")
    yield app_ctx
    registry._factories.remove(f"{__name__}:sample_jobs")
    app_ctx.close()


def test_jobs_are_persisted_with_explicit_misfire_policy(ctx: AppContext) -> None:
    sched = Scheduler(ctx)
    sched.start()
    try:
        job = sched.aps.get_job("sample")
        assert job is not None
        assert job.misfire_grace_time == 300
        assert job.coalesce is True
        assert "apscheduler_jobs" in inspect(ctx.db.engine).get_table_names()
    finally:
        sched.shutdown()
    # A new scheduler process finds the job in the database, not in memory.
    again = Scheduler(ctx)
    assert "sample" in [j.id for j in again.aps._lookup_jobstore("default").get_all_jobs()]


def test_a_second_scheduler_on_the_same_database_refuses(ctx: AppContext) -> None:
    first = Scheduler(ctx)
    first.start()
    try:
        second = Scheduler(AppContext.create(ctx.settings))
        with pytest.raises(LeaseHeld, match="another scheduler is running"):
            second.start()
        assert not second.aps.running
    finally:
        first.shutdown()
    # Once the first stops, the next one starts.
    third = Scheduler(ctx)
    third.start()
    third.shutdown()


def test_a_crashed_holder_is_taken_over_after_the_ttl(ctx: AppContext) -> None:
    frozen = clock.FrozenClock(clock.now())
    clock.set_clock(frozen)
    try:
        crashed = Lease(ctx.db, ttl_seconds=60)
        crashed.acquire()  # never renewed nor released: the process died
        with pytest.raises(LeaseHeld):
            Lease(ctx.db, ttl_seconds=60).acquire()
        frozen.advance(timedelta(seconds=61))
        taker = Lease(ctx.db, ttl_seconds=60)
        taker.acquire()
        assert crashed.renew() is False
        assert taker.renew() is True
    finally:
        clock.set_clock(clock.Clock())


EXTRA: list[JobSpec] = []


def extra_jobs(settings) -> list[JobSpec]:
    return list(EXTRA)


def test_jobs_follow_configuration_changes_without_restart(ctx: AppContext) -> None:
    registry.register(f"{__name__}:extra_jobs")
    sched = Scheduler(ctx)
    sched.start()
    try:
        EXTRA.append(JobSpec(id="crawl:new-source", func=f"{__name__}:record_call", trigger=IntervalTrigger(hours=2)))
        added, removed = sched.sync_jobs()
        assert added == ["crawl:new-source"]
        assert sched.aps.get_job("crawl:new-source") is not None
        EXTRA.clear()
        added, removed = sched.sync_jobs()
        assert removed == ["crawl:new-source"]
        assert sched.aps.get_job("crawl:new-source") is None
    finally:
        sched.shutdown()
        registry._factories.remove(f"{__name__}:extra_jobs")


def summary_job() -> dict[str, int]:
    return {"new": 3}


def test_a_later_stage_reacts_to_what_a_finished_job_returned(ctx: AppContext) -> None:
    seen: list[tuple[str, object]] = []
    done = threading.Event()

    def react(job_id: str, result: object) -> None:
        seen.append((job_id, result))
        done.set()

    sched = Scheduler(ctx, after_job=react)
    sched.start()
    try:
        sched.aps.add_job(f"{__name__}:summary_job", id="crawl:now", jobstore="local")
        assert done.wait(60)
    finally:
        sched.shutdown()
    assert ("crawl:now", {"new": 3}) in seen


def late_first_crawl(settings) -> list[JobSpec]:
    # Planned to start a minute ago: the scheduler got to it late (hundreds of sources on a busy machine).
    start = clock.now() - timedelta(minutes=1)
    return [
        JobSpec(
            id="late-crawl",
            func=f"{__name__}:record_call",
            trigger=IntervalTrigger(days=1, start_date=start),
            first_run_catch_up=True,
        ),
        JobSpec(id="late-other", func=f"{__name__}:record_call", trigger=IntervalTrigger(days=1, start_date=start)),
    ]


def test_a_first_crawl_planned_while_the_scheduler_was_starting_runs_now_not_a_day_later(ctx: AppContext) -> None:
    registry.register(f"{__name__}:late_first_crawl")
    sched = Scheduler(ctx)
    try:
        sched.aps.start(paused=True)
        sched.sync_jobs(replace=True)
        soon = clock.now() + timedelta(minutes=5)
        late = sched.aps.get_job("late-crawl")
        assert late is not None
        assert late.next_run_time <= soon
        other = sched.aps.get_job("late-other")
        assert other is not None
        assert other.next_run_time > soon
    finally:
        registry._factories.remove(f"{__name__}:late_first_crawl")
        sched.aps.shutdown(wait=False)


BUSY_STARTED = threading.Semaphore(0)
BUSY_RELEASE = threading.Event()


def busy_job() -> None:
    BUSY_STARTED.release()
    BUSY_RELEASE.wait(120)


def _heartbeat_at(ctx: AppContext, lease: Lease):
    with ctx.db.session() as session:
        row = session.get(SchedulerLease, lease.name)
        assert row is not None
        assert row.owner == lease.owner
        return row.heartbeat_at


def test_the_lease_keeps_beating_while_every_job_thread_is_busy(ctx: AppContext) -> None:
    # Four long jobs (crawls, an export) fill the jobs' thread pool; a heartbeat queued behind them would
    # let the lease expire and a second scheduler take over while this one still runs its jobs.
    ctx.settings.scheduler.heartbeat_seconds = 1
    sched = Scheduler(ctx)
    BUSY_RELEASE.clear()
    sched.start()
    try:
        for n in range(4):
            sched.aps.add_job(busy_job, id=f"busy-{n}", jobstore="local")
        for _ in range(4):
            assert BUSY_STARTED.acquire(timeout=60), "the busy jobs did not start"
        beats = [_heartbeat_at(ctx, sched.lease)]
        deadline = time.monotonic() + 60  # a beat a second is expected; the margin is for a loaded machine
        while len(set(beats)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            beats.append(_heartbeat_at(ctx, sched.lease))
        assert len(set(beats)) >= 3, f"the lease heartbeat stalled while the job pool was full: {sorted(set(beats))}"
        assert not sched.lost.is_set()
    finally:
        BUSY_RELEASE.set()
        sched.shutdown()


RELEASE = threading.Event()
RUNNING = threading.Event()


def held_job() -> None:
    RUNNING.set()
    RELEASE.wait(60)


def test_a_run_skipped_while_the_last_one_runs_is_logged_in_chinese_not_in_apschedulers_english(
    ctx: AppContext,
) -> None:
    chinese: list[str] = []
    sink = logger.add(lambda m: chinese.append(m.record["message"]), level="WARNING")
    english: list[str] = []
    library = logging.getLogger("apscheduler.scheduler")
    handler = logging.Handler()
    handler.emit = lambda record: english.append(record.getMessage())  # type: ignore[method-assign]
    library.addHandler(handler)
    RELEASE.clear()
    RUNNING.clear()
    sched = Scheduler(ctx)
    sched.start()
    try:
        job = sched.aps.add_job(
            f"{__name__}:held_job", "interval", hours=1, next_run_time=clock.now(), id="held", jobstore="local"
        )
        assert RUNNING.wait(60)
        job.modify(next_run_time=clock.now())  # due again while the first run still holds
        sched.aps.wakeup()
        deadline = time.monotonic() + 60
        while not any("held" in m and "本轮跳过" in m for m in chinese) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        RELEASE.set()
        sched.shutdown()
        library.removeHandler(handler)
        logger.remove(sink)
    assert any("任务 held 的上一轮尚未结束，本轮跳过" in m for m in chinese), chinese
    assert not [m for m in english if "maximum number of running instances" in m], english
