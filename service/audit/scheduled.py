"""Daily housekeeping: the audit retention purge and the removal of dead login sessions."""

from __future__ import annotations

from collections.abc import Callable

from apscheduler.triggers.cron import CronTrigger
from loguru import logger
from sqlalchemy.orm import Session

from service import context
from service.audit.anchors import take_anchor
from service.audit.service import purge
from service.scheduling.registry import JobSpec
from service.settings import SecuritySettings, Settings

# Other domains' daily clean-ups run in the same job as the audit purge (the login sessions, say). The
# composition root adds them, so audit/ imports no domain it cleans up after.
Housekeeper = Callable[[Session, SecuritySettings], int]
HOUSEKEEPERS: dict[str, Housekeeper] = {}


def add_housekeeper(name: str, clean: Housekeeper) -> None:
    """Run ``clean`` (returning how many rows it removed) with the daily purge; ``name`` says what in the log."""
    HOUSEKEEPERS[name] = clean


def jobs(settings: Settings) -> list[JobSpec]:
    """The jobs of this module, for service.scheduling.registry."""
    return [
        JobSpec(
            id="audit-retention",
            func="service.audit.scheduled:purge_old_records",
            trigger=CronTrigger(hour=3, minute=17, timezone=settings.zone),
            name="审计日志保留期清理",
        ),
        JobSpec(
            id="audit-anchor",
            func="service.audit.scheduled:anchor_chain",
            trigger=CronTrigger(hour=0, minute=5, timezone=settings.zone),
            name="审计日志每日锚点",
        ),
    ]


def anchor_chain() -> None:
    """Write today's anchor of the audit chain outside the database (file, log line, outbox notice)."""

    ctx = context.current()
    with ctx.db.session() as session:
        take_anchor(session, ctx.settings)


def purge_old_records() -> None:
    """Delete audit records past the retention period and sessions that can no longer be used."""

    ctx = context.current()
    policy = ctx.settings.security
    with ctx.db.session() as session:
        deleted = purge(session, policy.audit_retention_days)
        cleaned = {name: clean(session, policy) for name, clean in HOUSEKEEPERS.items()}
    others = "".join(f"，{name} {count} 条" for name, count in cleaned.items())
    logger.info("审计清理：删除 {} 条超过 {} 天的记录{}", deleted, policy.audit_retention_days, others)
