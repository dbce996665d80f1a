"""Scheduled matching jobs: the sweep (safety net for the ingest trigger) and alert digests."""

from __future__ import annotations

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from alerting.outbox import enqueue
from service import clock, context
from service.feed.models import Alert
from service.feed.service import due_digests, highest
from service.masking import mask_text
from service.matching.engine import engine_for
from service.scheduling.queue import MATCH_JOB_ID, MATCH_LOCK
from service.scheduling.registry import JobSpec
from service.settings import Settings


def jobs(settings: Settings) -> list[JobSpec]:
    return [
        JobSpec(
            id=MATCH_JOB_ID,
            func="service.matching.scheduled:sweep",
            trigger=IntervalTrigger(seconds=settings.alerts.sweep_seconds),
            name="匹配未匹配条目",
            # Matching runs one batch run at a time on all workers (its writes assume one writer).
            queued=True,
            lock=MATCH_LOCK,
        ),
        JobSpec(
            id="alert-digests",
            func="service.matching.scheduled:digests",
            trigger=IntervalTrigger(minutes=1),
            name="预警摘要推送",
        ),
    ]


def sweep() -> None:
    """Match whatever the ingest trigger missed."""

    engine_for(context.current()).run()


def digests() -> None:
    """Push one digest per department in digest mode whose oldest waiting alert has waited long enough."""

    ctx = context.current()
    now = clock.now()
    alerts_cfg = ctx.settings.alerts
    with ctx.db.session() as session:
        departments = set(session.execute(select(Alert.department).where(Alert.push == "digest")).scalars())
        policies = {d: alerts_cfg.policy_for(d) for d in departments}
        for department, alerts in due_digests(session, policies, now).items():
            lines = [f"{i + 1}. [{a.severity}] {mask_text(a.title)} ({a.source})" for i, a in enumerate(alerts[:50])]
            if len(alerts) > 50:
                lines.append(f"…… 另有 {len(alerts) - 50} 条")
            severity = highest([a.severity for a in alerts])
            enqueue(
                session,
                "alert",
                department,
                severity,
                f"【舆情预警摘要】{department} 共 {len(alerts)} 条",
                "\n".join(lines),
                f"digest:{department}:{alerts[0].id}-{alerts[-1].id}",
            )
            for alert in alerts:
                alert.push = "pushed"
                alert.pushed_at = now
