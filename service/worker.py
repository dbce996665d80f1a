"""``yuqing worker``: takes crawl and match jobs from the task queue (procrastinate) and runs them.

A job runs exactly as the scheduler runs it in-process (``queue.backend: none``): the same function,
then the same reactions of later stages (``service.flows.after_job``); a crawl that stored new or
updated items asks for a matching run at once. Start as many workers as needed, on any machines that
reach the database, the item store and the sites; the scheduler (one, behind its lease) decides when
each job runs, the queue's locks that a source is crawled and matching runs one at a time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from importlib import import_module
from typing import Any

import procrastinate
from loguru import logger

from crawlers.runner import start_crawl_hosts, use_crawl_hosts
from crawlers.scheduled import replay_spool
from service import clock, context
from service.app import configure_process, load_places  # the composition root: also registers every job
from service.context import AppContext
from service.flows import after_job
from service.scheduling import queue
from service.scheduling.jobhealth import record_run
from service.scheduling.registry import job_specs
from service.settings import Settings
from service.store.base import StoreUnavailable


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


def _init_store(ctx: AppContext) -> bool:
    try:
        ctx.store.init()
    except StoreUnavailable as exc:
        logger.warning("条目存储暂不可用，每次抓取将自行检查：{}", exc)
        return False
    return True


def worker_name() -> str:
    """How this worker shows in the queue's tables and logs: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_worker(ctx: AppContext, concurrency: int = 1) -> None:
    """Take jobs until SIGINT/SIGTERM (the jobs under way are finished first)."""
    settings = ctx.settings
    prepare(ctx, concurrency)
    # Each lane listens on a connection of its own and finishes its jobs on others.
    app = queue.make_app(settings, min_size=1, max_size=concurrency + 4)
    app.task(name=queue.JOB_TASK)(run_job)
    name = worker_name()
    logger.info("工作进程已启动（worker started）：{}，并发 {}", name, concurrency)
    asyncio.run(_run_lanes(app, settings, name, concurrency))
    queue.close()
    logger.info("工作进程已停止（worker stopped）：{}", name)


def prepare(ctx: AppContext, concurrency: int) -> None:
    """Everything a worker loads once, before it takes its first job."""
    settings = ctx.settings
    context.set_current(ctx)
    # Folding tables and the gazetteer from the data dir, with the configured place names: as the API and the
    # scheduler have them (without, 可能是同一事件 compared places with jieba's dictionary only).
    configure_process(settings)
    # Crawls start from warm host processes (a fork, not seconds of imports per crawl), and skip the store's
    # set-up when it was done here (a store down now is set up by each crawl, as without workers).
    use_crawl_hosts(store_ready=_init_store(ctx))
    # The hosts import Scrapy in their own processes while this one loads jieba's dictionary: neither waits
    # inside the first crawl or the first matching run.
    start_crawl_hosts(settings, concurrency)
    load_places()
    replay_spool()  # what any worker (this one before a restart, or one on a dead machine) left spooled


async def _run_lanes(app: procrastinate.App, settings: Settings, name: str, concurrency: int) -> None:
    """Two procrastinate workers in this process: ``concurrency`` crawls, and one matching lane.

    With one lane a matching run deferred after a crawl waited behind every crawl queued before it (alert
    latency of minutes under a backlog); the matching lane takes only the matching queue, so a run starts
    as soon as the previous one (on any worker: the lock) has finished. SIGINT/SIGTERM stop both lanes
    gracefully: what runs is finished, nothing new is taken.
    """
    options: dict[str, Any] = {
        "update_heartbeat_interval": settings.queue.heartbeat_seconds,
        "stalled_worker_timeout": settings.queue.stalled_seconds,
        "fetch_job_polling_interval": settings.queue.poll_seconds,
        # Finished jobs are history nobody reads; failed ones stay for the operator.
        "delete_jobs": "successful",
        # Both lanes stop on one signal, handled here.
        "install_signal_handlers": False,
    }
    async with app.open_async():
        lanes = [
            asyncio.create_task(
                app.run_worker_async(name=name, queues=[queue.CRAWL_QUEUE], concurrency=concurrency, **options)
            ),
            asyncio.create_task(
                app.run_worker_async(name=f"{name}/match", queues=[queue.MATCH_QUEUE], concurrency=1, **options)
            ),
        ]
        stop = _Stop(lanes)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        try:
            await asyncio.wait(lanes, return_when=asyncio.FIRST_COMPLETED)
            # One lane ended (a signal, or its failure): the other follows, finishing what it runs.
            stop()
            results = await asyncio.gather(*lanes, return_exceptions=True)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        for result in results:
            if isinstance(result, Exception):
                raise result


class _Stop:
    """Stop the lanes once. Cancelling procrastinate's run_worker_async is its graceful stop (running jobs are
    awaited); a second cancel would interrupt that wait and leave a crawl running with its pool closed."""

    def __init__(self, lanes: list[asyncio.Task[None]]) -> None:
        self.lanes = lanes
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        # The crawls under way write what they fetched and end (crawlers.child_watch) instead of running on.
        context.current().stopping.set()
        for lane in self.lanes:
            lane.cancel()
