"""``yuqing worker``: takes crawl and match jobs from the task queue (procrastinate) and runs them.

A job runs exactly as the scheduler runs it in-process (``queue.backend: none``): the same function,
then the same reactions of later stages (``service.flows.after_job``); a crawl that stored new or
updated items asks for a matching run at once. Start as many workers as needed, on any machines that
reach the database, the item store and the sites; the scheduler (one, behind its lease) decides when
each job runs, the queue's locks that a source is crawled and matching runs one at a time.
"""

from __future__ import annotations

import os
import socket
from importlib import import_module
from typing import Any

from loguru import logger

from crawlers.runner import use_crawl_hosts
from crawlers.scheduled import replay_spool
from service import app as _composition_root  # noqa: F401 - registers every domain's jobs (job_specs)
from service import clock, context
from service.context import AppContext
from service.flows import after_job
from service.scheduling import queue
from service.scheduling.jobhealth import record_run
from service.scheduling.registry import job_specs


class UnknownJob(Exception):
    """A queued job names a function that is not one of the scheduler's queued jobs."""


def _queued_func(ctx: AppContext, func: str) -> Any:
    # The queue is a table anyone with database access can write: run only what the scheduler would.
    allowed = {spec.func for spec in job_specs(ctx.settings) if spec.queued}
    if func not in allowed:
        raise UnknownJob(f"不是可排队的任务：{func}")
    module, _, attr = func.partition(":")
    return getattr(import_module(module), attr)


def run_job(job_id: str, func: str, kwargs: dict[str, Any]) -> None:
    """The queue's one task: run a scheduled job here, record its run, let later stages react."""
    ctx = context.current()
    target = _queued_func(ctx, func)
    record_run(ctx.db, job_id, started=clock.now())
    try:
        result = target(**kwargs)
    except Exception as exc:
        record_run(ctx.db, job_id, error=exc)
        raise
    record_run(ctx.db, job_id, succeeded=clock.now())
    after_job(ctx, job_id, result)
    if isinstance(result, dict) and (result.get("new") or result.get("updated")):
        queue.defer_match(ctx.settings)


def worker_name() -> str:
    """How this worker shows in the queue's tables and logs: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_worker(ctx: AppContext, concurrency: int = 1) -> None:
    """Take jobs until SIGINT/SIGTERM (a job under way is finished first)."""
    settings = ctx.settings
    context.set_current(ctx)
    # Crawls start from warm host processes (a fork, not seconds of imports per crawl).
    use_crawl_hosts()
    replay_spool()  # what any worker (this one before a restart, or one on a dead machine) left spooled
    app = queue.make_app(settings, min_size=1, max_size=max(2, concurrency + 1))
    app.task(name=queue.JOB_TASK)(run_job)
    name = worker_name()
    logger.info("工作进程已启动（worker started）：{}，并发 {}", name, concurrency)
    app.run_worker(
        name=name,
        concurrency=concurrency,
        update_heartbeat_interval=settings.queue.heartbeat_seconds,
        stalled_worker_timeout=settings.queue.stalled_seconds,
        fetch_job_polling_interval=settings.queue.poll_seconds,
        # Finished jobs are history nobody reads; failed ones stay for the operator.
        delete_jobs="successful",
        install_signal_handlers=True,
    )
    queue.close()
    logger.info("工作进程已停止（worker stopped）：{}", name)
