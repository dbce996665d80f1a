"""Work that spans stages, wired in by the composition root (``service.app``).

The crawl stage only crawls: its job returns a crawl summary. What later stages do about a finished crawl
lives here, so the crawlers never import the ledger or the outbox: a failing source raises a
source-health notice (a silent source is the worst), and new or updated items are checked at once for
public replies that meet a ticket's respond deadline. New items are matched by the matching worker.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from alerting.outbox import enqueue
from crawlers.scheduled import CRAWL_JOB_PREFIX, health_alert
from service import clock
from service.context import AppContext
from service.ledger.scheduled import sweep_public_replies

# Notices per failure streak: the 1st, 3rd, 10th and every 50th failure; a source failing all day is not spam.
NOTIFY_AT_FAILURES = (1, 3, 10)


def after_crawl(ctx: AppContext, source_id: str, summary: dict[str, Any]) -> None:
    """React to one source's crawl summary: notify a failure, record replies that just appeared."""
    if not summary.get("healthy", True):
        failures = summary.get("consecutive_failures", 1)
        subject, body = health_alert(source_id, summary)
        with ctx.db.session() as session:
            day = clock.to_local(clock.now()).date().isoformat()
            key = f"source-health:{source_id}:{day}:{failures}"
            if failures in NOTIFY_AT_FAILURES or failures % 50 == 0:
                enqueue(session, "source_health", None, "major", subject, body, key)
        logger.warning("来源 {} 抓取失败：{}", source_id, summary.get("failure"))
    if summary.get("updated") or summary.get("new"):
        # A reply that appeared on the website is the department's public response: record it now
        # rather than at the next periodic sweep.
        sweep_public_replies(ctx)


def after_job(ctx: AppContext, job_id: str, result: Any) -> None:
    """The scheduler calls this with each finished job's id and return value."""
    if job_id.startswith(CRAWL_JOB_PREFIX) and isinstance(result, dict):
        after_crawl(ctx, job_id.removeprefix(CRAWL_JOB_PREFIX), result)
