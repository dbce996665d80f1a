"""Scheduled exports: the weekly ledger (Monday 08:30 by default) and the daily brief (08:00)."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

from service import context
from service.exports.service import run_daily_brief, run_weekly_export
from service.scheduling.registry import JobSpec
from service.settings import Settings

WEEKLY_JOB_ID = "exports.weekly_ledger"
DAILY_JOB_ID = "exports.daily_brief"


def weekly_trigger(settings: Settings) -> CronTrigger:
    """When the weekly ledger is written, in the settings' time zone."""
    cron = settings.exports.weekly_cron
    return CronTrigger(day_of_week=cron.day_of_week, hour=cron.hour, minute=cron.minute, timezone=settings.zone)


def daily_trigger(settings: Settings) -> CronTrigger:
    """When the daily brief is sent, in the settings' time zone."""
    brief = settings.exports.daily_brief
    return CronTrigger(hour=brief.hour, minute=brief.minute, timezone=settings.zone)


def jobs(settings: Settings) -> list[JobSpec]:
    """The jobs of this module, for service.scheduling.registry."""
    specs = []
    if settings.exports.weekly_cron.enabled:
        specs.append(
            JobSpec(
                id=WEEKLY_JOB_ID,
                func=f"{__name__}:weekly_ledger_job",
                trigger=weekly_trigger(settings),
                name="每周回应台账导出",
            )
        )
    if settings.exports.daily_brief.enabled:
        specs.append(
            JobSpec(
                id=DAILY_JOB_ID,
                func=f"{__name__}:daily_brief_job",
                trigger=daily_trigger(settings),
                name="舆情回应日报",
            )
        )
    return specs


def weekly_ledger_job() -> None:
    """Write last week's ledger file and queue it for sending (runs in the scheduler)."""

    ctx = context.current()
    run_weekly_export(ctx.db, ctx.settings)


def daily_brief_job() -> None:
    """Send yesterday's brief (runs in the scheduler)."""

    ctx = context.current()
    run_daily_brief(ctx.db, ctx.settings)
