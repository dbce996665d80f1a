"""The ledger side of the SLA monitor: the ``alerting.monitor.Ledger`` interface over the ticket tables.

alerting/ owns deadlines, the monitor and the outbox and never imports the ticket service; the
composition root hands it this ledger. ``check_sla`` is the monitor run on the tickets of this ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from loguru import logger
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, noload

from alerting.monitor import SlaReport, run_sla_check
from service import context
from service.context import AppContext
from service.ledger import rollup, transitions
from service.ledger.config import LedgerConfig, ledger_config
from service.ledger.errors import StaleVersion
from service.ledger.models import Ticket
from service.ledger.records import save_change
from service.ledger.service import facts_of
from service.settings import Settings


def _rows() -> Select[Ticket]:
    # Only the ticket rows: items and timeline are not needed to plan (and were most of the memory).
    return select(Ticket).options(noload(Ticket.items), noload(Ticket.timeline))


class TicketLedger:
    """The tickets as the SLA monitor reads and escalates them."""

    stale_error = StaleVersion

    def config(self, settings: Settings) -> LedgerConfig:
        return ledger_config(settings)

    def due_page(self, session: Session, at: datetime, after_id: int, limit: int) -> Sequence[Ticket]:
        # A merged ticket (并单) is watched through the ticket it was merged into.
        query = (
            _rows()
            .where(Ticket.next_due_at <= at, Ticket.id > after_id, Ticket.merged_into.is_(None))
            .order_by(Ticket.id)
            .limit(limit)
        )
        return list(session.scalars(query).all())

    def get(self, session: Session, ticket_id: int) -> Ticket | None:
        return session.get(Ticket, ticket_id)

    def tickets(self, session: Session, ticket_ids: Sequence[int]) -> Sequence[Ticket]:
        return list(session.scalars(_rows().where(Ticket.id.in_(ticket_ids))).all())

    def set_next_due(self, session: Session, ticket: Ticket, at: datetime | None) -> None:
        # A ticket changed meanwhile keeps the change's mark (the version moved).
        session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.version == ticket.version)
            .values(next_due_at=at)
            .execution_options(synchronize_session=False)
        )

    def escalate(self, session: Session, ticket: Ticket, now: datetime) -> bool:
        try:
            outcome = transitions.apply(ticket.status, "escalate", facts_of(ticket))
        except transitions.TransitionNotAllowed:
            return False  # e.g. returned to the officers: nobody to press until it is reassigned
        save_change(
            session,
            ticket,
            ticket.version,
            {"escalated": outcome.facts.escalated},
            action="escalate",
            actor="system:sla",
            at=now,
            note="回应超期，自动督办",
            detail={"reason": "respond_breach"},
        )
        return True


LEDGER = TicketLedger()


def check_sla(ctx: AppContext, at: datetime | None = None, *, apply: bool = True) -> SlaReport:
    """The SLA monitor on this ledger as of ``at`` (default now); see :func:`alerting.monitor.run_sla_check`."""
    return run_sla_check(ctx, LEDGER, at, apply=apply)


def sla_job() -> None:
    """Scheduled job: run the monitor as of now in the running application."""
    ctx = context.current()
    report = check_sla(ctx)
    if report.notices:
        logger.info("时限检查产生 {} 条提醒", len(report.notices))
    # The statistics roll-up: fold the changes the triggers recorded since the last run (a short write).
    with ctx.db.session() as session:
        rollup.fold(session)
