"""Scheduled crawling: one job per source at its interval, never two crawls of one source at once
(max_instances=1 in one scheduler; the scheduler lease keeps it to one scheduler).

A crawl job crawls, records the source's health and returns the crawl summary; what later stages do
about it (notices, public replies) is wired by the composition root (``service.flows``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from crawlers.health import record_crawl
from crawlers.runner import CrawlError, CrawlStopped, crawl_sources
from crawlers.sources import load_all_sources
from service import clock, context
from service.config_files import ConfigError
from service.scheduling import queue
from service.scheduling.registry import JobSpec
from service.settings import Settings
from service.store.base import StoreUnavailable

CRAWL_JOB_PREFIX = "crawl:"


def jobs(settings: Settings) -> list[JobSpec]:
    try:
        sources = load_all_sources(settings)
    except ConfigError as exc:
        logger.error("抓取任务未能排期：{}", exc)
        return []
    for bad in sources.invalid:
        # Skipped, not fatal: the other sources keep their schedule (yuqing crawl reports it as a failure).
        logger.error("来源已跳过，配置无效：{}", bad.error)
    now = clock.now()
    # First crawls are staggered so that a hundred sources do not start a hundred crawl processes on
    # the scheduler's box at once; with workers the queue paces them, and a short step only keeps order.
    step = 0.1 if queue.enabled(settings) else 5.0
    specs = []
    for n, source in enumerate(s for s in sources.sources if s.enabled):
        specs.append(
            JobSpec(
                id=f"{CRAWL_JOB_PREFIX}{source.id}",
                func="crawlers.scheduled:crawl_one",
                # First crawl soon after start (staggered), then at the source's interval.
                trigger=IntervalTrigger(
                    seconds=max(1, int(source.period.total_seconds())),
                    start_date=now + timedelta(seconds=3 + step * n),
                ),
                kwargs={"source_id": source.id},
                name=f"抓取 {source.name}",
                # One crawl of a source at a time on all workers: the lock is the job id (crawl:<source>).
                queued=True,
                first_run_catch_up=True,
            )
        )
    if settings.store.backend == "elasticsearch":
        # Items spooled into the database while the cluster was away (by any worker, on any machine) are
        # written as soon as it answers, even when no crawl writes in the meantime.
        specs.append(
            JobSpec(
                id=SPOOL_JOB_ID,
                func="crawlers.scheduled:replay_spool",
                trigger=IntervalTrigger(seconds=SPOOL_REPLAY_SECONDS),
                name="重放条目存储暂存",
            )
        )
    return specs


SPOOL_JOB_ID = "store-spool-replay"
SPOOL_REPLAY_SECONDS = 60


def replay_spool() -> dict[str, Any]:
    """Scheduled job: write the items spooled during an outage; quiet while the store is still down."""
    replay = getattr(context.current().store, "replay", None)
    if replay is None:
        return {"replayed": 0}
    try:
        return {"replayed": replay()}
    except StoreUnavailable as exc:
        logger.info("条目存储仍不可用，暂存条目稍后重放：{}", exc)
        return {"replayed": 0}


# A crawl that has not finished by then is killed and counted as a failure: a hung child must not
# hold the source's job (max_instances=1) forever.
CRAWL_TIMEOUT_SECONDS = 1800


def health_alert(source_id: str, summary: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of the source-health notice for officers."""
    failure = summary.get("failure") or "未知原因"
    lines = [f"来源：{source_id}", f"原因：{failure}", f"连续失败：{summary.get('consecutive_failures', 1)} 次"]
    for sample in (summary.get("error_samples") or [])[:3]:
        lines.append(f"{sample.get('url', '')}：{sample.get('reason', '')}")
    return f"【来源异常】{source_id} 抓取失败", "\n".join(lines)


def crawl_one(source_id: str) -> dict[str, Any]:
    """Crawl one source and record its health; the summary says ``healthy`` and, if not, why."""
    ctx = context.current()
    try:
        results = crawl_sources(ctx.settings, [source_id], timeout=CRAWL_TIMEOUT_SECONDS, stop=ctx.stopping)
        summary = results.get(source_id, {})
    except CrawlStopped as exc:
        # Stopped with the service, not a fault of the source: no failure recorded, nobody notified.
        logger.info("来源 {} 的抓取随服务停止而结束：{}", source_id, exc)
        return {"stopped": True}
    except CrawlError as exc:
        # The child died or hung: nothing was judged, so record the failure here, or the source's
        # health would still say "fine" while nothing arrives.
        failed = {"pages": 0, "entries": 0, "items": 0, "errors": 1, "error_samples": [{"reason": str(exc)}]}
        record = record_crawl(ctx.settings, source_id, failed)
        summary = {
            "healthy": False,
            "failure": record.last_failure or f"抓取进程失败: {exc}",
            "consecutive_failures": record.consecutive_failures,
        }
    return summary
