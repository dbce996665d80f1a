"""The scheduler process: APScheduler 3 with jobs persisted in the database, guarded by a lease.

It cannot die quietly: a job that raises is logged and runs again at its next time (APScheduler's
executor catches it); an error of the job store inside APScheduler's own loop (``database is locked``
while it updates a job's next run) is logged and the loop goes on, where APScheduler 3 lets it end the
thread. A watchdog thread checks that the loop thread and the workers live (a dead worker is started
again; a dead loop calls the ``on_fatal`` callbacks, and ``yuqing run`` / ``yuqing scheduler`` then exit
non-zero), writes the jobs' health and tells officers about stalls. The lease heartbeat runs on a thread
of its own, so jobs filling the pool cannot let the lease expire.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from service import clock
from service.context import AppContext
from service.scheduling import queue
from service.scheduling.jobhealth import JobTracker
from service.scheduling.lease import Lease
from service.scheduling.registry import JobSpec, job_specs

# A busy lock is usually gone in a moment; the jobs due meanwhile run on the retry.
LOOP_RETRY_SECONDS = 2.0


class GuardedScheduler(BackgroundScheduler):
    """APScheduler whose main loop survives an error of its job store."""

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            # APScheduler wakes its loop once more after shutting its executors down, and submitted the jobs due
            # meanwhile to the closed pool: an English traceback at every stop.
            return None
        try:
            return super()._process_jobs()
        except Exception as exc:
            logger.error("调度循环出错（{} 秒后重试）：{}", LOOP_RETRY_SECONDS, exc)
            return LOOP_RETRY_SECONDS


def _first_run_passed(trigger: Any) -> bool:
    """An interval trigger whose start date is already in the past (APScheduler would skip to the next one)."""
    start = getattr(trigger, "start_date", None)
    return isinstance(trigger, IntervalTrigger) and start is not None and start < clock.now()


def _deferral(spec: JobSpec) -> tuple[str, dict[str, Any]]:
    """What the scheduler runs for a queued job: it puts the job in the task queue for a worker."""
    return "service.scheduling.queue:defer_job", {
        "job_id": spec.id,
        "func": spec.func,
        "lock": spec.lock,
        "task_kwargs": spec.kwargs,
    }


class Worker(Protocol):
    """A long-running helper hosted by the scheduler process (the matching worker, say)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _SkippedRunNotice(logging.Filter):
    """Drops APScheduler's English "skipped: maximum number of running instances reached" line: the
    scheduler logs its own Chinese line for the same event (``Scheduler._skipped``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


SKIPPED_RUN_NOTICE = _SkippedRunNotice()


class Scheduler:
    """Start with ``start()``; raises LeaseHeld when another scheduler runs on the same database.

    ``workers`` run while this process holds the lease; ``after_job`` is called with each finished job's id
    and return value (so a later stage can react to an earlier one's result); ``watchers`` are called with
    the job health at each watchdog round (stall notices). The composition root (``service.app``) passes
    them in.
    """

    def __init__(
        self,
        ctx: AppContext,
        workers: Sequence[Worker] = (),
        after_job: Callable[[str, Any], None] | None = None,
        watchers: Sequence[Callable[[AppContext, JobTracker], None]] = (),
    ) -> None:
        self.ctx = ctx
        self.workers = list(workers)
        self.after_job = after_job
        self.watchers = list(watchers)
        cfg = ctx.settings.scheduler
        self.lease = Lease(ctx.db, ttl_seconds=cfg.lock_ttl_seconds)
        self.lost = threading.Event()
        self.tracker = JobTracker(ctx.db)
        self.failed: str | None = None
        self.on_fatal: list[Callable[[str], Any]] = []
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="scheduler-watchdog", daemon=True)
        # Job health is written by a thread of its own: a job's executor thread that wrote it after each run
        # waited on the database (seconds at load 25), so due jobs queued behind it until they misfired.
        self._health_due = threading.Event()
        self._health_writer = threading.Thread(target=self._write_health, name="job-health-writer", daemon=True)
        # The lease heartbeat has a thread of its own too: on the jobs' pool, four long jobs (crawls, an
        # export) kept it waiting past the lease's TTL and another scheduler could take the lease meanwhile.
        self._heartbeat_thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self.aps = GuardedScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(engine=ctx.db.engine, tablename="apscheduler_jobs"),
                # The heartbeat belongs to this process only; it must never be persisted.
                "local": MemoryJobStore(),
            },
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={
                "coalesce": cfg.coalesce,
                "misfire_grace_time": cfg.misfire_grace_time,
                "max_instances": 1,
            },
            timezone=ctx.settings.zone,
        )

    def start(self) -> None:
        self.lease.acquire()
        try:
            self.aps.add_listener(self._job_done, EVENT_JOB_EXECUTED)
            self.aps.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
            self.aps.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
            logging.getLogger("apscheduler.scheduler").addFilter(SKIPPED_RUN_NOTICE)  # added once: same object
            self.aps.start(paused=True)
            self.sync_jobs(replace=True)
            # Sources added through the API or edited in sources.yaml get (or lose) their jobs without a restart.
            self.aps.add_job(self._resync, "interval", seconds=60, id="jobs-sync", jobstore="local")
            self.aps.resume()
            for worker in self.workers:
                worker.start()
            self._watchdog.start()
            self._health_writer.start()
            self._heartbeat_thread.start()
        except BaseException:
            self.lease.release()
            raise
        logger.info("调度器已启动（scheduler started）：{} 个任务，租约持有者 {}", len(self.jobs()), self.lease.owner)

    def sync_jobs(self, replace: bool = False) -> tuple[list[str], list[str]]:
        """Make the persisted jobs match the registry: add missing ones, remove unknown ones.

        ``replace`` also rewrites existing jobs (at start, so a changed interval takes effect); a periodic
        sync leaves them alone so their next run time is kept.
        """
        specs = job_specs(self.ctx.settings)
        with_queue = queue.enabled(self.ctx.settings)
        queued = frozenset(spec.id for spec in specs if spec.queued and with_queue)
        self.tracker.register([(spec.id, spec.name or spec.id, spec.trigger) for spec in specs], external=queued)
        wanted = {spec.id for spec in specs}
        existing = {job.id for job in self.aps.get_jobs(jobstore="default")}
        added = []
        for spec in specs:
            if spec.id in existing and not replace:
                continue
            func, kwargs = _deferral(spec) if spec.id in queued else (spec.func, spec.kwargs)
            extra = {}
            if spec.first_run_catch_up and spec.id not in existing and _first_run_passed(spec.trigger):
                # A first run planned for a moment that passed while the jobs were being read (hundreds of
                # sources on a busy machine) would otherwise wait a whole interval: run it now.
                extra["next_run_time"] = clock.now()
            self.aps.add_job(
                func,
                trigger=spec.trigger,
                id=spec.id,
                name=spec.name or spec.id,
                kwargs=kwargs,
                replace_existing=True,
                **extra,
            )
            if spec.id not in existing:
                added.append(spec.id)
        removed = sorted(existing - wanted)
        for job_id in removed:
            logger.info("移除已不在配置中的任务 {}", job_id)
            self.aps.remove_job(job_id, jobstore="default")
        return added, removed

    def _resync(self) -> None:
        try:
            added, removed = self.sync_jobs()
        except Exception as exc:  # a broken config file must not stop the scheduler; it is logged
            logger.error("任务同步失败：{}", exc)
            return
        if added or removed:
            logger.info("任务已同步：新增 {} 个，移除 {} 个", added, removed)

    def _job_done(self, event: JobExecutionEvent) -> None:
        if self.after_job is None:
            return
        try:
            self.after_job(event.job_id, event.retval)
        except Exception:  # one failed reaction must not stop the scheduler; it is logged
            logger.exception("任务 {} 的后续处理失败", event.job_id)

    def _skipped(self, event: JobEvent) -> None:
        # A run still going when the next is due (a slow crawl on a short interval): never two at once.
        logger.warning("任务 {} 的上一轮尚未结束，本轮跳过（同一任务不会同时运行两次）", event.job_id)

    def _on_event(self, event: JobEvent) -> None:
        now = clock.now()
        if event.code == EVENT_JOB_SUBMITTED:
            self.tracker.started(event.job_id, now)
            return  # runs on APScheduler's loop thread: no database write here
        if event.code == EVENT_JOB_EXECUTED:
            self.tracker.succeeded(event.job_id, now)
        else:
            self.tracker.failed(event.job_id, now, getattr(event, "exception", None) or RuntimeError("?"))
        self._health_due.set()  # runs on the job's executor thread: written by the health writer, not here

    def _write_health(self) -> None:
        """Write job health soon after each change, many changes in one transaction, off the job threads."""
        while not self._stop.is_set():
            self._health_due.wait()
            self._health_due.clear()
            try:
                self.tracker.flush(read_back=False)  # the watchdog round reads the workers' runs
            except Exception:  # the writer must outlive a failed write; the watchdog writes again too
                logger.exception("任务健康状态写入失败")

    def _watch(self) -> None:
        interval = self.ctx.settings.scheduler.watchdog_seconds
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception:  # the watchdog must outlive anything it watches
                logger.exception("调度器看门狗检查失败")

    def check(self) -> None:
        """One watchdog round: threads alive, job health written, stalls and recoveries told."""
        if self._stop.is_set():
            return
        thread = getattr(self.aps, "_thread", None)
        if self.failed is None and (thread is None or not thread.is_alive()):
            self._fatal("调度线程已停止运行 (the APScheduler thread died)")
        for worker in self.workers:
            alive = getattr(worker, "alive", None)  # optional: workers that can tell they died
            if alive is not None and not alive():
                logger.error("工作线程 {} 已停止，正在重新启动", type(worker).__name__)
                worker.start()
        self.tracker.flush()
        if not self.lost.is_set():
            for watch in self.watchers:
                watch(self.ctx, self.tracker)

    def _fatal(self, reason: str) -> None:
        self.failed = reason
        logger.critical("调度器故障：{}", reason)
        for callback in self.on_fatal:
            try:
                callback(reason)
            except Exception:
                logger.exception("调度器故障回调出错")

    def _beat(self) -> None:
        """Renew the lease every ``heartbeat_seconds`` until shut down or the lease is lost."""
        interval = self.ctx.settings.scheduler.heartbeat_seconds
        while not self._stop.wait(interval) and not self.lost.is_set():
            self._heartbeat()

    def _heartbeat(self) -> None:
        try:
            if not self.lease.renew():
                logger.error("调度器租约已被其他进程取得，本调度器停止")
                self.lost.set()
                self.aps.pause()
        except Exception as exc:
            logger.warning("调度器心跳失败（将重试）：{}", exc)

    def jobs(self) -> list[dict[str, str]]:
        return [
            {"id": j.id, "name": j.name, "next_run": j.next_run_time.isoformat() if j.next_run_time else ""}
            for j in self.aps.get_jobs(jobstore="default")
        ]

    def shutdown(self) -> None:
        # Running jobs wind down (a crawl stops within scheduler.crawl_stop_seconds), and none starts meanwhile.
        self.ctx.stopping.set()
        if self.aps.running:
            self.aps.pause()
        self._stop.set()
        self._health_due.set()
        if self._watchdog.is_alive():
            self._watchdog.join(timeout=30)
        if self._health_writer.is_alive():
            self._health_writer.join(timeout=30)
        if self._heartbeat_thread.is_alive():
            self._heartbeat_thread.join(timeout=30)
        for worker in self.workers:
            worker.stop()
        if self.aps.running:
            self.aps.shutdown(wait=True)
        self.tracker.flush()  # the last runs' health, written after the writer thread stopped
        if not self.lost.is_set():
            self.lease.release()
        logger.info("调度器已停止（scheduler stopped），租约已释放")
