"""Scheduled crawling: one job per source at its interval, never two crawls of one source at once
(max_instances=1 in one scheduler; the scheduler lease keeps it to one scheduler)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from service import clock, context
from service.config_files import ConfigError
from service.scheduling.registry import JobSpec
from service.settings import Settings


def jobs(settings: Settings) -> list[JobSpec]:
    from crawlers.sources import load_all_sources

    try:
        sources = load_all_sources(settings)
    except ConfigError as exc:
        logger.error("crawl jobs not scheduled: {}", exc)
        return []
    now = clock.now()
    specs = []
    for n, source in enumerate(s for s in sources.sources if s.enabled):
        specs.append(
            JobSpec(
                id=f"crawl:{source.id}",
                func="crawlers.scheduled:crawl_one",
                # First crawl soon after start (staggered), then at the source's interval.
                trigger=IntervalTrigger(
                    seconds=max(1, int(source.period.total_seconds())),
                    start_date=now + timedelta(seconds=3 + 5 * n),
                ),
                kwargs={"source_id": source.id},
                name=f"抓取 {source.name}",
            )
        )
    return specs


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
    """Crawl one source; a failing source raises a source-health notice (a silent source is the worst)."""
    from alerting.outbox import enqueue
    from crawlers.health import record_crawl
    from crawlers.runner import CrawlError, crawl_sources

    ctx = context.current()
    try:
        summary = crawl_sources(ctx.settings, [source_id], timeout=CRAWL_TIMEOUT_SECONDS).get(source_id, {})
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
    if not summary.get("healthy", True):
        subject, body = health_alert(source_id, summary)
        with ctx.db.session() as session:
            day = clock.to_local(clock.now()).date().isoformat()
            # One notice per source per failure streak length: a source failing all day is not spam.
            key = f"source-health:{source_id}:{day}:{summary.get('consecutive_failures', 1)}"
            if summary.get("consecutive_failures", 1) in (1, 3, 10) or summary.get("consecutive_failures", 1) % 50 == 0:
                enqueue(session, "source_health", None, "major", subject, body, key)
        logger.warning("source {} failed: {}", source_id, summary.get("failure"))
    if summary.get("updated") or summary.get("new"):
        # A reply that appeared on the website is the department's public response: record it now
        # rather than at the next periodic sweep. New items are matched by the matching worker.
        from service.tickets.scheduled import sweep_public_replies

        sweep_public_replies(ctx)
    return summary
