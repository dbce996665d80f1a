"""督办: the notice to the supervisors of an escalated ticket, queued through the outbox.

An officer's ``escalate`` action (service.ledger.actions) queues it once per ticket version; the SLA
monitor's automatic escalation sends its own notices (alerting.monitor).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from alerting.outbox import enqueue
from service.ledger import transitions
from service.ledger.config import LedgerConfig, ledger_config
from service.ledger.models import Ticket
from service.vocabulary import SEVERITY_LABELS


def notify_escalation(
    session: Session, ticket: Ticket, *, note: str | None, by: str, config: LedgerConfig | None = None
) -> None:
    """Queue the 督办 notice to the supervisors of ``ticket`` (once per ticket version)."""
    config = config or ledger_config()
    reason = f"\n督办意见：{note}" if note else ""
    enqueue(
        session,
        "escalation",
        ticket.department,
        ticket.severity,
        f"【督办】{ticket.title}",
        f"工单 #{ticket.id}「{ticket.title}」（{ticket.department}，{SEVERITY_LABELS.get(ticket.severity, '')}）"
        f"已被 {by} 督办，当前状态：{transitions.STATUS_LABELS.get(ticket.status, ticket.status)}。{reason}",
        f"ticket:{ticket.id}:escalate:v{ticket.version}",
        notifications=config.notifications,
    )
