"""One row of the response ledger (回应台账) and the queries that stream them from the ticket tables.

Rows carry raw values (UTC datetimes, codes, unmasked text); the writers format, localise and mask.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from service.clock import SHANGHAI
from service.config_files import read_yaml
from service.ledger.models import STAGE_COLUMNS, Ticket, TicketItem
from service.ledger.timing import REPLIED_BEFORE_DISCOVERY_LABEL, replied_before_discovery, stage_late
from service.vocabulary import CHANNEL_LABELS, RESPONSE_TYPE_LABELS, SEVERITY_LABELS, STAGES
from service.vocabulary import TICKET_STATUS_LABELS as STATUS_LABELS

# Tickets are read from the database in batches of this many; memory stays flat in the ticket count.
BATCH = 500


# Not frozen: a frozen dataclass sets each of its 24 fields through object.__setattr__, which made building
# the row 5x dearer and a fifth of an export's CPU. Nothing changes a row after it is built.
@dataclass(slots=True)
class LedgerRow:
    """One ticket as the ledger shows it. Datetimes are aware UTC; text is raw (writers mask it)."""

    seq: int  # 序号
    ticket_id: int
    title: str  # 舆情标题
    channel: str | None  # 来源渠道: hotline | mailbox | media
    source: str  # 来源 (source name, or id when unnamed)
    published_at: datetime | None  # 发布时间
    discovered_at: datetime  # 发现时间
    department: str  # 责任单位 id
    department_name: str  # 责任单位 as people read it
    severity: str  # 严重程度: minor | normal | major | critical
    acknowledged_at: datetime | None  # 签收时间
    result: str | None  # 办理结果
    handled_at: datetime | None  # 办理时间
    responded_at: datetime | None  # 回应时间
    response_url: str | None  # 回应方式/链接
    status: str  # 当前状态
    acknowledge_overdue: bool  # 签收是否超期 (met late, or unmet past its deadline)
    handle_overdue: bool
    respond_overdue: bool
    escalated: bool  # 督办
    note: str = ""  # 备注
    source_url: str | None = None  # 原文链接: the first item's page on the source site
    order_no: str | None = None  # 工单号: the source's own number (12345 工单号, 信件编号) of the first item having one
    response_type: str | None = None  # online | phone | written | in_person | other
    response_note: str | None = None  # 回应情况 as the department wrote it

    @property
    def response_text(self) -> str | None:
        """回应方式/链接: the public address of an online response, else how it was made and what was said
        (电话：已电话回复市民…), the ledger being the record of the response."""
        if self.response_url:
            return self.response_url
        if self.response_type and self.response_type != "online":
            label = RESPONSE_TYPE_LABELS.get(self.response_type, self.response_type)
            return f"{label}：{self.response_note}" if self.response_note else label
        return None

    @property
    def channel_label(self) -> str:
        """来源渠道 in Chinese."""
        return CHANNEL_LABELS.get(self.channel or "", self.channel or "")

    @property
    def severity_label(self) -> str:
        return SEVERITY_LABELS.get(self.severity, self.severity)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    def met_at(self, stage: str) -> datetime | None:
        """When ``stage`` was met."""
        return {"acknowledge": self.acknowledged_at, "handle": self.handled_at, "respond": self.responded_at}[stage]

    def overdue(self, stage: str) -> bool:
        """Whether ``stage`` is overdue (met late, or unmet past its deadline)."""
        return {
            "acknowledge": self.acknowledge_overdue,
            "handle": self.handle_overdue,
            "respond": self.respond_overdue,
        }[stage]

    @property
    def overdue_stages(self) -> list[str]:
        return [s for s in STAGES if self.overdue(s)]

    @property
    def open_overdue_stages(self) -> list[str]:
        """Stages past their deadline and still not met: what a department must act on now."""
        if self.status == "closed":
            return []
        return [s for s in STAGES if self.overdue(s) and self.met_at(s) is None]


def week_of(day: date) -> tuple[date, date]:
    """The ISO week (Monday, Sunday) containing ``day``."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def previous_week(at: datetime, zone: ZoneInfo = SHANGHAI) -> tuple[date, date]:
    """The last complete ISO week (Monday, Sunday) before the local day of ``at``."""
    monday, _ = week_of(at.astimezone(zone).date())
    return week_of(monday - timedelta(days=1))


def day_bounds(first: date, last: date, zone: ZoneInfo = SHANGHAI) -> tuple[datetime, datetime]:
    """[start, end) instants of the local days ``first`` to ``last``, both included."""
    return (
        datetime.combine(first, time(0), tzinfo=zone),
        datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone),
    )


def _names(config_dir: Path, file: str, key: str) -> dict[str, str]:
    # Display names only: the owners of these files validate them; a broken file just shows ids.
    try:
        data = read_yaml(Path(config_dir) / file) or {}
    except Exception:
        return {}
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return {}
    return {
        str(e["id"]): str(e.get("name") or e["id"]) for e in entries if isinstance(e, dict) and e.get("id") is not None
    }


@dataclass(frozen=True)
class Names:
    """Display names of departments and sources, from departments.yaml and sources.yaml."""

    departments: dict[str, str]
    sources: dict[str, str]

    @classmethod
    def load(cls, config_dir: Path) -> Names:
        """Names from the config dir; missing or unreadable files give ids as names."""
        return cls(_names(config_dir, "departments.yaml", "departments"), _names(config_dir, "sources.yaml", "sources"))

    def department(self, dept: str) -> str:
        return self.departments.get(dept, dept)

    def source(self, source: str) -> str:
        return self.sources.get(source, source)


NO_NAMES = Names({}, {})


def _note(ticket: Any, item_count: int, zone: ZoneInfo) -> str:
    parts = []
    if ticket.status == "returned":
        parts.append("已退件，待改派")
    if ticket.extension_pending:
        parts.append("延期申请待审批")
    if ticket.extension_until is not None and not ticket.extension_pending:
        parts.append(f"已延期至{ticket.extension_until.astimezone(zone):%Y-%m-%d %H:%M}")
    if (ticket.response_source or "").startswith("system:"):
        parts.append("回应由系统从公开答复中采集")
    if replied_before_discovery(ticket.discovered_at, ticket.respond_met_at):
        parts.append(REPLIED_BEFORE_DISCOVERY_LABEL)
    if item_count > 1:
        parts.append(f"关联条目{item_count}条")
    if ticket.merged_from:
        parts.append("并单：含原工单 " + "、".join(f"#{i}" for i in ticket.merged_from.split(",") if i))
    if ticket.split_from:
        parts.append(f"拆单：拆自工单 #{ticket.split_from}")
    return "；".join(parts)


def _row(ticket: Any, items: Sequence[Any], seq: int, at: datetime, names: Names, zone: ZoneInfo) -> LedgerRow:
    # ``ticket``: a Ticket or a row of the tickets table; ``items``: its items (channel, source, url) by id.
    # Runs once per exported ticket: plain attribute reads, no per-stage lookups (it is most of an export's CPU).
    first = items[0] if items else None
    status = ticket.status
    return LedgerRow(
        seq=seq,
        ticket_id=ticket.id,
        title=ticket.title,
        channel=first.channel if first else None,
        source=names.source(first.source) if first else "",
        published_at=ticket.published_at,
        discovered_at=ticket.discovered_at,
        department=ticket.department,
        department_name=names.department(ticket.department),
        severity=ticket.severity,
        acknowledged_at=ticket.ack_met_at,
        result=ticket.result,
        handled_at=ticket.handle_met_at,
        responded_at=ticket.respond_met_at,
        response_url=ticket.response_url,
        response_type=ticket.response_type,
        response_note=ticket.response_note,
        source_url=next((i.url for i in items if i.url), None),
        order_no=next((i.order_no for i in items if i.order_no), None),
        status=status,
        acknowledge_overdue=stage_late(status, "acknowledge", ticket.ack_met_at, ticket.ack_due, at),
        handle_overdue=stage_late(status, "handle", ticket.handle_met_at, ticket.handle_due, at),
        respond_overdue=stage_late(status, "respond", ticket.respond_met_at, ticket.respond_due, at),
        escalated=ticket.escalated,
        note=_note(ticket, len(items), zone),
    )


def row_from_ticket(
    ticket: Ticket, seq: int, at: datetime, names: Names = NO_NAMES, zone: ZoneInfo = SHANGHAI
) -> LedgerRow:
    """The ledger row of ``ticket`` with overdue flags as of ``at``."""
    return _row(ticket, ticket.items, seq, at, names, zone)


_TICKETS = Ticket.__table__
_ITEMS = TicketItem.__table__
_COLUMNS = [
    _TICKETS.c[name]
    for name in (
        "id", "title", "status", "severity", "department", "discovered_at", "published_at", "ack_due",
        "ack_met_at", "handle_due", "handle_met_at", "respond_due", "respond_met_at", "response_url",
        "response_type", "response_note", "response_source", "result", "escalated", "extension_pending",
        "extension_until", "merged_from", "split_from",
    )
]  # fmt: skip


_ITEM_COLUMNS = [
    _ITEMS.c.id.label("item_row"),
    _ITEMS.c.channel,
    _ITEMS.c.source,
    _ITEMS.c.url,
    _ITEMS.c.order_no,
]


def ledger_select(where: Sequence[Any]) -> Select[Any]:
    """The one query a ledger export reads: tickets LEFT JOIN their items, in ledger order, streamed.

    Public so that benchmarks dump exactly this SQL as their floor.
    """
    return (
        select(*_COLUMNS, *_ITEM_COLUMNS)
        .select_from(_TICKETS.outerjoin(_ITEMS, _ITEMS.c.ticket_id == _TICKETS.c.id))
        .where(*where)
        .order_by(_TICKETS.c.discovered_at, _TICKETS.c.id, _ITEMS.c.id)
        .execution_options(stream_results=True, yield_per=BATCH)
    )


def _stream(session: Session, where: Sequence[Any], at: datetime, names: Names, zone: ZoneInfo) -> Iterator[LedgerRow]:
    # One query, tickets LEFT JOIN their items, from a server-side cursor (stream_results: PostgreSQL sends
    # BATCH rows at a time), no ORM objects. A ticket's rows are consecutive (ordered by ticket, then item), so
    # a ticket is complete when the next ticket's first row arrives. Memory stays flat in the ticket count, and
    # the cost per ticket is close to reading its columns (a query of the items per batch cost a third more).
    stmt = ledger_select(where)
    seq = 0
    current: Any = None
    items: list[Any] = []
    for batch in session.execute(stmt).partitions():
        for row in batch:
            if current is not None and row.id != current.id:
                seq += 1
                yield _row(current, items, seq, at, names, zone)
                items = []
            current = row
            if row.item_row is not None:
                items.append(row)
    if current is not None:
        yield _row(current, items, seq + 1, at, names, zone)


def rows_from_tickets(
    session: Session,
    date_from: date,
    date_to: date,
    department: str | None,
    at: datetime,
    *,
    names: Names = NO_NAMES,
    zone: ZoneInfo = SHANGHAI,
) -> Iterator[LedgerRow]:
    """Stream the rows of tickets discovered on local days ``date_from``..``date_to`` (both included).

    Ordered by discovery time; ``seq`` numbers them from 1; overdue flags are as of ``at``.
    """
    if date_to < date_from:
        raise ValueError(f"date range: {date_from} is after {date_to}")
    return _stream(session, ledger_where(date_from, date_to, department, zone), at, names, zone)


def ledger_where(date_from: date, date_to: date, department: str | None, zone: ZoneInfo = SHANGHAI) -> list[Any]:
    """The ledger's filter: tickets discovered on local days ``date_from``..``date_to``, not merged away."""
    start, end = day_bounds(date_from, date_to, zone)
    # Merged tickets (并单) are rows of the ticket they were merged into.
    where = [Ticket.discovered_at >= start, Ticket.discovered_at < end, Ticket.merged_into.is_(None)]
    if department:
        where.append(Ticket.department == department)
    return where


def rows_for_brief(
    session: Session,
    day: date,
    at: datetime,
    department: str | None = None,
    *,
    names: Names = NO_NAMES,
    zone: ZoneInfo = SHANGHAI,
) -> Iterator[LedgerRow]:
    """Rows a daily brief for ``day`` needs: discovered or responded that day, or open and overdue at ``at``."""
    start, end = day_bounds(day, day, zone)
    open_late = []
    for prefix in STAGE_COLUMNS.values():
        due = getattr(Ticket, f"{prefix}_due")
        met = getattr(Ticket, f"{prefix}_met_at")
        open_late.append(and_(met.is_(None), due < at))
    where = [
        Ticket.merged_into.is_(None),
        or_(
            and_(Ticket.discovered_at >= start, Ticket.discovered_at < end),
            and_(Ticket.respond_met_at >= start, Ticket.respond_met_at < end),
            and_(Ticket.status != "closed", or_(*open_late)),
        ),
    ]
    if department:
        where.append(Ticket.department == department)
    return _stream(session, where, at, names, zone)
