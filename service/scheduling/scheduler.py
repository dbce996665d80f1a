"""The scheduler process: APScheduler 3 with jobs persisted in the database, guarded by a lease."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from loguru import logger

from service.context import AppContext
from service.scheduling.lease import Lease
from service.scheduling.registry import job_specs


class Worker(Protocol):
    """A long-running helper hosted by the scheduler process (the matching worker, say)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Scheduler:
    """Start with ``start()``; raises LeaseHeld when another scheduler runs on the same database.

    ``workers`` run while this process holds the lease; ``after_job`` is called with each finished job's id
    and return value (so a later stage can react to an earlier one's result). The composition root
    (``service.app``) passes both in.
    """

    def __init__(
        self,
        ctx: AppContext,
        workers: Sequence[Worker] = (),
        after_job: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.workers = list(workers)
        self.after_job = after_job
        cfg = ctx.settings.scheduler
        self.lease = Lease(ctx.db, ttl_seconds=cfg.lock_ttl_seconds)
        self.lost = threading.Event()
        self.aps = BackgroundScheduler(
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
            self.aps.start(paused=True)
            self.sync_jobs(replace=True)
            self.aps.add_job(
                self._heartbeat,
                "interval",
                seconds=self.ctx.settings.scheduler.heartbeat_seconds,
                id="lease-heartbeat",
                jobstore="local",
            )
            # Sources added through the API or edited in sources.yaml get (or lose) their jobs without a restart.
            self.aps.add_job(self._resync, "interval", seconds=60, id="jobs-sync", jobstore="local")
            self.aps.resume()
            for worker in self.workers:
                worker.start()
        except BaseException:
            self.lease.release()
            raise
        logger.info("scheduler started with {} job(s) as {}", len(self.jobs()), self.lease.owner)

    def sync_jobs(self, replace: bool = False) -> tuple[list[str], list[str]]:
        """Make the persisted jobs match the registry: add missing ones, remove unknown ones.

        ``replace`` also rewrites existing jobs (at start, so a changed interval takes effect); a periodic
        sync leaves them alone so their next run time is kept.
        """
        specs = job_specs(self.ctx.settings)
        wanted = {spec.id for spec in specs}
        existing = {job.id for job in self.aps.get_jobs(jobstore="default")}
        added = []
        for spec in specs:
            if spec.id in existing and not replace:
                continue
            self.aps.add_job(
                spec.func,
                trigger=spec.trigger,
                id=spec.id,
                name=spec.name or spec.id,
                kwargs=spec.kwargs,
                replace_existing=True,
            )
            if spec.id not in existing:
                added.append(spec.id)
        removed = sorted(existing - wanted)
        for job_id in removed:
            logger.info("removing job {} that is no longer configured", job_id)
            self.aps.remove_job(job_id, jobstore="default")
        return added, removed

    def _resync(self) -> None:
        try:
            added, removed = self.sync_jobs()
        except Exception as exc:  # a broken config file must not stop the scheduler; it is logged
            logger.error("job sync failed: {}", exc)
            return
        if added or removed:
            logger.info("jobs synced: added {}, removed {}", added, removed)

    def _job_done(self, event: JobExecutionEvent) -> None:
        if self.after_job is None:
            return
        try:
            self.after_job(event.job_id, event.retval)
        except Exception:  # one failed reaction must not stop the scheduler; it is logged
            logger.exception("reaction to job {} failed", event.job_id)

    def _heartbeat(self) -> None:
        try:
            if not self.lease.renew():
                logger.error("scheduler lease lost to another process; stopping this scheduler")
                self.lost.set()
                self.aps.pause()
        except Exception as exc:
            logger.warning("scheduler heartbeat failed (will retry): {}", exc)

    def jobs(self) -> list[dict[str, str]]:
        return [
            {"id": j.id, "name": j.name, "next_run": j.next_run_time.isoformat() if j.next_run_time else ""}
            for j in self.aps.get_jobs(jobstore="default")
        ]

    def shutdown(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.aps.running:
            self.aps.shutdown(wait=True)
        if not self.lost.is_set():
            self.lease.release()
        logger.info("scheduler stopped")
