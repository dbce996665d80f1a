"""The SLA monitor: warnings, breaches, escalations and recoveries, each raised exactly once.

For every stage of every ticket the monitor looks at the instant ``at``:

- ``warning``: the stage is unmet and ``warn_at`` of its time is used (counted as the stage counts:
  wall time for natural periods, working days for working-day periods);
- ``breach``: the stage is unmet and its deadline has passed (a stage first seen already past due gets
  the breach only, not a warning as well);
- ``escalation``: a breached respond stage of a major or critical ticket marks the ticket 督办 (timeline
  entry by ``system:sla``, ``escalated`` set) and notifies the supervisors;
- ``recovery``: a breached stage has been met; the notice says how late.

"Exactly once" is a unique ``sla_notices`` row per (ticket, stage, level, deadline), inserted in the same
transaction as the outbox messages: a restart, a second scheduler or a rerun of ``yuqing sla check``
finds the row and sends nothing. Each notice has its own transaction, so one failure costs one notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar, cast

from loguru import logger
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting.models import SlaNotice
from alerting.outbox import enqueue
from alerting.sla import SlaPolicy
from service import clock
from service.clock import ensure_aware, to_local
from service.context import AppContext
from service.db_columns import insert_ignore
from service.settings import NotificationSettings, Settings
from service.vocabulary import SEVERITY_LABELS, STAGE_LABELS, STAGES, URGENT_SEVERITIES, Severity, Stage


class MonitoredTicket(Protocol):
    """What the monitor reads of a ticket."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def status(self) -> str: ...
    def due(self, stage: str) -> datetime: ...
    def met(self, stage: str) -> datetime | None: ...
    def started(self, stage: str) -> datetime: ...
    def waived(self, stage: str) -> bool:
        """The stage was skipped rather than missed (it raises no notice)."""
        ...


TicketT = TypeVar("TicketT", bound=MonitoredTicket)


class LedgerConfig(Protocol):
    """The configuration the monitor works under: the SLA policy and where notices go."""

    @property
    def policy(self) -> SlaPolicy: ...
    @property
    def notifications(self) -> NotificationSettings: ...


class Ledger(Protocol, Generic[TicketT]):
    """The ticket ledger as the monitor sees it; ``service.ledger.monitoring`` implements it and the
    composition root passes it in, so alerting/ never imports the ticket service."""

    @property
    def stale_error(self) -> type[Exception]:
        """Raised by ``escalate`` when the ticket changed meanwhile: the notice is retried next run."""
        ...

    def config(self, settings: Settings) -> LedgerConfig: ...

    def due_page(self, session: Session, at: datetime, after_id: int, limit: int) -> Sequence[TicketT]:
        """Tickets whose next instant has come, by id after ``after_id``, at most ``limit``."""
        ...

    def get(self, session: Session, ticket_id: int) -> TicketT | None: ...

    def tickets(self, session: Session, ticket_ids: Sequence[int]) -> Sequence[TicketT]: ...

    def set_next_due(self, session: Session, ticket: TicketT, at: datetime | None) -> None:
        """Store the ticket's next instant unless it changed since it was read."""
        ...

    def escalate(self, session: Session, ticket: TicketT, now: datetime) -> bool:
        """Mark the ticket 督办 on the timeline; False when its state does not allow it."""
        ...


LEVELS = ("warning", "breach", "escalation", "recovery")
KIND_OF_LEVEL = {"warning": "sla_warning", "breach": "sla_breach", "escalation": "escalation", "recovery": "recovery"}


@dataclass(frozen=True)
class Notice:
    """One notice raised by a run."""

    ticket_id: int
    stage: str
    level: str
    due_at: datetime
    department: str
    subject: str
    body: str


@dataclass
class SlaReport:
    """What one run raised (nothing already raised before is repeated here)."""

    at: datetime
    notices: list[Notice] = field(default_factory=list)

    def of_level(self, level: str) -> list[Notice]:
        """The notices of one level."""
        return [n for n in self.notices if n.level == level]

    @property
    def warnings(self) -> list[Notice]:
        return self.of_level("warning")

    @property
    def breaches(self) -> list[Notice]:
        return self.of_level("breach")


def _when(value: datetime) -> str:
    return to_local(value).strftime("%Y-%m-%d %H:%M")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}天" if days else "", f"{hours}小时" if hours else "", f"{mins}分钟" if mins else ""]
    return "".join(parts) or "不到1分钟"


def _severity(ticket: MonitoredTicket) -> Severity:
    # The ledger stores only the four severities (its API and the rules refuse others).
    return cast(Severity, ticket.severity)


def _head(ticket: MonitoredTicket) -> str:
    return f"工单 #{ticket.id}「{ticket.title}」（{ticket.department}，{SEVERITY_LABELS.get(ticket.severity, '')}）"


def _span(ticket: MonitoredTicket, stage: str, due: datetime, at: datetime, policy: SlaPolicy) -> str:
    """How far ``at`` is from the deadline ``due`` (before it, or after it for a late completion), in the unit
    the stage counts in: "2 个工作日" for a working-day stage once a whole working day lies between, else
    days, hours and minutes."""
    left = policy.remaining(_severity(ticket), cast(Stage, stage), due, at)
    if left.workdays:
        return f"{abs(left.workdays)} 个工作日"
    return _duration(abs(due - at))


def _text(ticket: MonitoredTicket, stage: str, level: str, at: datetime, policy: SlaPolicy) -> tuple[str, str]:
    label = STAGE_LABELS[stage]
    due = ticket.due(stage)
    if level == "warning":
        return (
            f"【时限预警】{ticket.title}",
            f"{_head(ticket)}的{label}时限将于 {_when(due)} 到期，剩余 {_span(ticket, stage, due, at, policy)}，"
            f"请尽快{label}。",
        )
    if level == "breach":
        return (
            f"【超期】{ticket.title}",
            f"{_head(ticket)}的{label}时限已于 {_when(due)} 到期，至今尚未{label}。",
        )
    if level == "escalation":
        return (
            f"【督办】{ticket.title}",
            f"{_head(ticket)}的回应时限已于 {_when(due)} 到期仍未回应，已自动督办，请督促办理。",
        )
    met = ticket.met(stage)
    assert met is not None
    if met <= due:
        return (
            f"【已完成】{ticket.title}",
            f"{_head(ticket)}的{label}已于 {_when(met)} 完成（在时限 {_when(due)} 之前，发现较晚）。",
        )
    return (
        f"【超期后完成】{ticket.title}",
        f"{_head(ticket)}的{label}已于 {_when(met)} 完成，超出时限 {_span(ticket, stage, due, met, policy)}。",
    )


# Tickets planned per database round trip: memory stays flat however many tickets are open.
PAGE_SIZE = 500

Raised = set[tuple[int, str, str, datetime]]


def _raised(session: Session, ticket_ids: list[int]) -> Raised:
    if not ticket_ids:
        return set()
    rows = session.execute(
        select(SlaNotice.ticket_id, SlaNotice.stage, SlaNotice.level, SlaNotice.due_at).where(
            SlaNotice.ticket_id.in_(ticket_ids)
        )
    ).all()
    return {(r[0], r[1], r[2], ensure_aware(r[3])) for r in rows}


def due_notices(ticket: MonitoredTicket, at: datetime, config: LedgerConfig) -> list[tuple[Stage, str]]:
    """(stage, level) pairs the state of ``ticket`` calls for at ``at``, already raised or not."""
    wanted = []
    for stage in STAGES:
        due, met = ticket.due(stage), ticket.met(stage)
        if met is not None:
            if met > due:
                wanted.append((stage, "recovery"))
            continue
        if ticket.status == "closed" or ticket.waived(stage):
            continue
        if at >= due:
            wanted.append((stage, "breach"))
            if stage == "respond" and ticket.severity in URGENT_SEVERITIES:
                wanted.append((stage, "escalation"))
        else:
            warn_at = config.policy.warn_time_for(
                _severity(ticket),
                stage,
                ticket.started(stage),
                due,
            )
            if at >= warn_at:
                wanted.append((stage, "warning"))
    return wanted


def next_due(ticket: MonitoredTicket, raised: Raised, config: LedgerConfig) -> datetime | None:
    """The earliest instant at which ``ticket`` calls for a notice not raised yet; None when none is left.

    This is what ``tickets.next_due_at`` holds, so a run reads only the tickets with something due.
    """
    out: list[datetime] = []
    for stage in STAGES:
        due, met = ticket.due(stage), ticket.met(stage)

        def done(level: str, stage: str = stage, due: datetime = due) -> bool:
            return (ticket.id, stage, level, due) in raised

        if met is not None:
            if met > due and done("breach") and not done("recovery"):
                out.append(met)
            continue
        if ticket.status == "closed" or ticket.waived(stage):
            continue
        escalation_left = stage == "respond" and ticket.severity in URGENT_SEVERITIES and not done("escalation")
        if not done("breach") and not done("warning"):
            out.append(
                config.policy.warn_time_for(
                    _severity(ticket),
                    stage,
                    ticket.started(stage),
                    due,
                )
            )
        elif not done("breach") or escalation_left:
            out.append(due)
    return min(out) if out else None


def _plan(
    tickets: Sequence[MonitoredTicket],
    raised: Raised,
    at: datetime,
    config: LedgerConfig,
) -> list[tuple[int, Stage, str]]:
    plan = []
    for ticket in tickets:
        for stage, level in due_notices(ticket, at, config):
            key = (ticket.id, stage, level, ticket.due(stage))
            if key in raised:
                continue
            if level == "recovery" and (ticket.id, stage, "breach", ticket.due(stage)) not in raised:
                continue  # met late but never reported late: nothing to recover from
            plan.append((ticket.id, stage, level))
    return plan


def _store_next_due(ctx: AppContext, ledger: Ledger[TicketT], ticket_ids: list[int], config: LedgerConfig) -> None:
    """Write each ticket's next instant; a ticket changed meanwhile keeps the change's mark."""
    if not ticket_ids:
        return
    with ctx.db.session() as session:
        raised = _raised(session, ticket_ids)
        for ticket in ledger.tickets(session, ticket_ids):
            ledger.set_next_due(session, ticket, next_due(ticket, raised, config))


def run_sla_check(
    ctx: AppContext, ledger: Ledger[TicketT], at: datetime | None = None, *, apply: bool = True
) -> SlaReport:
    """Raise the warnings, breaches, escalations and recoveries due as of ``at`` (default: now).

    ``apply=False`` is the what-if: the report lists what a run would raise and nothing is written
    (no notice row, no outbox message, no escalation, no mark moved), so asking about a future time
    cannot spend the real notices before the real deadline.

    Reads only tickets whose ``next_due_at`` has come, a page at a time, then moves each one's mark
    to its next instant; a ticket whose notice failed keeps its mark and is tried again next run.
    """
    at = ensure_aware(at) if at is not None else clock.now()
    config = ledger.config(ctx.settings)
    report = SlaReport(at=at)
    after_id = 0
    while True:
        with ctx.db.session() as session:
            tickets = ledger.due_page(session, at, after_id, PAGE_SIZE)
            if not tickets:
                break
            after_id = tickets[-1].id
            plan = _plan(tickets, _raised(session, [t.id for t in tickets]), at, config)
            page_ids = [t.id for t in tickets]
            if not apply:
                by_id = {t.id: t for t in tickets}
                report.notices.extend(_notice(by_id[i], stage, level, at, config) for i, stage, level in plan)
                continue
        failed: set[int] = set()
        for ticket_id, stage, level in plan:
            try:
                notice = _raise(ctx, ledger, ticket_id, stage, level, at, config)
            except ledger.stale_error:
                logger.info("时限检查期间工单 {} 被修改，{} {} 将在下次运行时重试", ticket_id, stage, level)
                failed.add(ticket_id)
                continue
            except Exception:
                logger.exception("工单 {2} 的时限提醒 {0} {1} 失败，下次运行时重试", stage, level, ticket_id)
                failed.add(ticket_id)
                continue
            if notice is not None:
                report.notices.append(notice)
        _store_next_due(ctx, ledger, [i for i in page_ids if i not in failed], config)
    return report


def _raise(
    ctx: AppContext,
    ledger: Ledger[TicketT],
    ticket_id: int,
    stage: Stage,
    level: str,
    at: datetime,
    config: LedgerConfig,
) -> Notice | None:
    with ctx.db.session() as session:
        ticket = ledger.get(session, ticket_id)
        if ticket is None or (stage, level) not in due_notices(ticket, at, config):
            return None  # changed since the plan was made
        notice = _notice(ticket, stage, level, at, config)
        due, subject, body = notice.due_at, notice.subject, notice.body
        now = clock.now()
        inserted = insert_ignore(
            session,
            SlaNotice.__table__,
            {
                "ticket_id": ticket.id,
                "stage": stage,
                "level": level,
                "due_at": due,
                "raised_at": now,
                "department": ticket.department,
                "message": body,
            },
            ["ticket_id", "stage", "level", "due_at"],
        )
        if inserted is None:
            return None  # another monitor raised it first
        if level == "escalation" and not ledger.escalate(session, ticket, now):
            session.rollback()
            return None
        enqueue(
            session,
            KIND_OF_LEVEL[level],
            ticket.department,
            ticket.severity,
            subject,
            body,
            f"sla:{ticket.id}:{stage}:{level}:{due.isoformat()}",
            notifications=config.notifications,
        )
        return notice


def _notice(ticket: MonitoredTicket, stage: str, level: str, at: datetime, config: LedgerConfig) -> Notice:
    subject, body = _text(ticket, stage, level, at, config.policy)
    return Notice(ticket.id, stage, level, ticket.due(stage), ticket.department, subject, body)
