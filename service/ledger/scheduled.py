"""Scheduled jobs of the ledger: SLA monitor, notification delivery, public-reply sweep."""

from __future__ import annotations

from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from service import context
from service.context import AppContext
from service.ledger.replies import record_public_reply, tickets_waiting_for_reply
from service.scheduling.registry import JobSpec
from service.settings import Settings
from service.store.base import StoreUnavailable

BATCH = 200


def jobs(settings: Settings) -> list[JobSpec]:
    """The ledger's jobs with the intervals of ``settings``."""
    return [
        JobSpec(
            id="sla-check",
            func="service.ledger.monitoring:sla_job",
            trigger=IntervalTrigger(seconds=settings.scheduler.sla_interval_seconds),
            name="时限监控",
        ),
        JobSpec(
            id="outbox-delivery",
            func="alerting.outbox:deliver_job",
            trigger=IntervalTrigger(seconds=settings.notifications.delivery_interval_seconds),
            name="通知发送",
        ),
        JobSpec(
            id="public-reply-sweep",
            func="service.ledger.scheduled:reply_sweep_job",
            trigger=IntervalTrigger(seconds=settings.ledger.reply_sweep_interval_seconds),
            name="公开答复核查",
        ),
    ]


def sweep_public_replies(ctx: AppContext) -> list[int]:
    """Record the public replies of linked items the crawler stored; the ids of tickets updated.

    This makes the respond stage independent of call order: a reply stored before its item was linked
    to a ticket (or while the ledger was down) is found here.
    """
    with ctx.db.session() as session:
        waiting = tickets_waiting_for_reply(session)
    item_ids = sorted(waiting)
    updated: list[int] = []
    for start in range(0, len(item_ids), BATCH):
        try:
            items = ctx.store.get_many(item_ids[start : start + BATCH])
        except StoreUnavailable as exc:
            logger.warning("公开答复巡检：条目存储不可用：{}", exc)
            break
        for item in items:
            if not item.reply:
                continue
            with ctx.db.session() as session:
                updated.extend(record_public_reply(session, item))
    return updated


def reply_sweep_job() -> None:
    """Scheduled job: the public-reply sweep in the running application."""

    updated = sweep_public_replies(context.current())
    if updated:
        logger.info("已为 {} 件工单记录公开答复", len(updated))
