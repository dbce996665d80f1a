"""The response ledger: creating tickets, acting on them, public replies, queries and statistics.

Every change of a ticket row goes through :func:`save_change`: ``UPDATE tickets ... WHERE id = :id AND
version = :v`` and a check that exactly one row changed. Of N concurrent actions on the same version
exactly one wins; the others get :class:`StaleVersion` and their transaction writes nothing, so the
timeline (inserted in the same transaction) never shows a move that did not happen.

Co-handling (several departments on one ticket at once) is not supported yet: a ticket belongs to one
department; the matching engine opens one ticket per department concerned instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from alerting.calendar import HOLIDAYS_FILE, load_calendar
from alerting.sla import SLA_FILE, SlaConfig, SlaPolicy, load_sla
from service import clock
from service.auth.principal import Principal
from service.clock import SHANGHAI, ensure_aware
from service.config_files import ConfigError, cached, read_yaml
from service.db_columns import insert_ignore, insert_ignore_many
from service.ledger import transitions
from service.ledger.models import STAGE_COLUMNS, Ticket, TicketItem, TimelineEntry
from service.ledger.timing import stage_late, stage_waived
from service.ledger.transitions import Facts, TransitionNotAllowed
from service.rules.config import DEPARTMENTS_FILE, current_departments
from service.settings import LedgerSettings, NotificationSettings, Settings
from service.store.base import Item
from service.vocabulary import RESPONSE_TYPE_LABELS, RESPONSE_TYPES, SEVERITY_LABELS, STAGES

# Statuses in which a stage can still be met by the department (or a public reply).
OPEN_STATUSES = ("new", "acknowledged", "handled", "responded", "returned")
REPLY_CHANNELS = ("hotline", "mailbox")


class TicketNotFound(Exception):
    """No such ticket, or one the caller may not see (the API answers 404 either way)."""

    def __init__(self, ticket_id: int) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"工单 {ticket_id} 不存在")


class StaleVersion(Exception):
    """The ticket changed since the caller read it (the API answers 409)."""

    def __init__(self, ticket_id: int, expected: int, current: int | None = None) -> None:
        self.ticket_id = ticket_id
        self.expected = expected
        self.current = current
        now = f"，当前版本为 {current}" if current is not None else ""
        super().__init__(f"工单 {ticket_id} 已被他人修改（提交的版本为 {expected}{now}），请刷新后重试")


class InvalidInput(ValueError):
    """The action's input is incomplete or wrong (the API answers 422); ``field`` names what."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


# -- configuration -------------------------------------------------------------------------------


@dataclass
class LedgerConfig:
    """What the ledger needs from the configuration: SLA policy, ledger and notification settings."""

    policy: SlaPolicy
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    departments: frozenset[str] | None = None  # None: departments.yaml absent, any id is accepted


def policy_for(config_dir: Path) -> SlaPolicy:
    """The SLA policy of ``config_dir`` (sla.yaml + holidays.yaml), reloaded only when either file changes."""
    key = Path(config_dir).resolve()
    return cached(
        "sla-policy",
        [key / SLA_FILE, key / HOLIDAYS_FILE],
        lambda: SlaPolicy(load_sla(key), load_calendar(key)),
    )


def _read_department_ids(config_dir: Path) -> frozenset[str] | None:
    path = Path(config_dir) / DEPARTMENTS_FILE
    if not path.exists():
        return None
    try:
        # The validated file is shared with the rule book: one parse per change per process.
        return frozenset(d.id for d in current_departments(Path(config_dir)).departments)
    except ConfigError:
        pass  # a file that does not validate still names its departments for reassignment
    data = read_yaml(path)
    if not data or not isinstance(data.get("departments"), list):
        return None
    return frozenset(str(d["id"]) for d in data["departments"] if isinstance(d, dict) and d.get("id"))


def _department_ids(config_dir: Path) -> frozenset[str] | None:
    # Every ticket action and matching batch asks; parsing a departments.yaml of 10k rules cost seconds.
    return cached("department-ids", [Path(config_dir) / DEPARTMENTS_FILE], lambda: _read_department_ids(config_dir))


def ledger_config(settings: Settings | None = None) -> LedgerConfig:
    """The ledger configuration of ``settings``, of the running application, or the defaults."""
    if settings is None:
        from service import context

        try:
            settings = context.current().settings
        except RuntimeError:
            from alerting.calendar import WorkCalendar

            return LedgerConfig(policy=SlaPolicy(SlaConfig(), WorkCalendar()))
    return LedgerConfig(
        policy=policy_for(settings.config_dir),
        ledger=settings.ledger,
        notifications=settings.notifications,
        departments=_department_ids(settings.config_dir),
    )


# -- reading ---------------------------------------------------------------------------------------


def facts_of(ticket: Ticket) -> Facts:
    """The transition-table facts of ``ticket``."""
    return Facts(
        handled=ticket.handled,
        responded=ticket.responded,
        extension_pending=ticket.extension_pending,
        escalated=ticket.escalated,
    )


def overdue(ticket: Ticket, now: datetime | None = None) -> dict[str, bool]:
    """Per stage: True when it was met late, or is unmet and past its deadline."""
    now = now or clock.now()
    out = {}
    for stage in STAGES:
        out[stage] = stage_late(ticket.status, stage, ticket.met(stage), ticket.due(stage), now)
    return out


def time_left(ticket: Ticket, now: datetime | None = None) -> dict[str, float | None]:
    """Per stage: seconds until the deadline (negative when past), None once met (or waived)."""
    now = now or clock.now()
    return {
        stage: None
        if ticket.met(stage) is not None or stage_waived(ticket.status, stage, None)
        else (ticket.due(stage) - now).total_seconds()
        for stage in STAGES
    }


def allowed_actions_for(ticket: Ticket, principal: Principal) -> list[str]:
    """The actions ``principal`` can do on ``ticket`` now."""
    if principal.role == "department" and principal.department != ticket.department:
        return []
    return transitions.allowed_actions(ticket.status, facts_of(ticket), principal.role)


def get(session: Session, ticket_id: int, principal: Principal | None = None) -> Ticket:
    """The ticket, refreshed; TicketNotFound when missing or not visible to ``principal``."""
    ticket = session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None or (principal is not None and not principal.may_see_department(ticket.department)):
        raise TicketNotFound(ticket_id)
    return ticket


def _day_start(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return ensure_aware(value)
    return datetime.combine(value, time(0), tzinfo=SHANGHAI)


def _day_end(value: date | datetime) -> datetime:
    # A date bound includes the whole Asia/Shanghai day.
    if isinstance(value, datetime):
        return ensure_aware(value)
    return datetime.combine(value + timedelta(days=1), time(0), tzinfo=SHANGHAI)


def _overdue_clause(now: datetime):
    parts = []
    for stage, prefix in STAGE_COLUMNS.items():
        due = getattr(Ticket, f"{prefix}_due")
        met = getattr(Ticket, f"{prefix}_met_at")
        unmet_late = and_(met.is_(None), due < now)
        if stage == "acknowledge":  # a waived acknowledge stage is never overdue (service.ledger.timing)
            unmet_late = and_(unmet_late, Ticket.status.in_(("new", "returned")))
        parts.append(or_(unmet_late, met > due))
    return or_(*parts)


def list_tickets(
    session: Session,
    principal: Principal,
    *,
    status: Sequence[str] | None = None,
    department: str | None = None,
    overdue_only: bool | None = None,
    date_from: date | datetime | None = None,
    date_to: date | datetime | None = None,
    page: int = 1,
    size: int = 20,
) -> tuple[list[Ticket], int]:
    """Tickets ``principal`` may see, newest discovered first, and their total count.

    ``date_from``/``date_to`` bound the discovery time (dates are whole Asia/Shanghai days, both
    included); ``overdue_only`` True keeps tickets with a stage late or past due, False the others.
    """
    conditions = []
    if principal.role == "department":
        conditions.append(Ticket.department == (principal.department or ""))
    elif not principal.sees_everything:
        return [], 0
    if department:
        conditions.append(Ticket.department == department)
    if status:
        unknown = [s for s in status if s not in transitions.STATUSES]
        if unknown:
            raise InvalidInput("status", f"unknown status {unknown[0]!r} (one of {', '.join(transitions.STATUSES)})")
        conditions.append(Ticket.status.in_(list(status)))
    if overdue_only is not None:
        clause = _overdue_clause(clock.now())
        conditions.append(clause if overdue_only else ~clause)
    if date_from is not None:
        conditions.append(Ticket.discovered_at >= _day_start(date_from))
    if date_to is not None:
        conditions.append(Ticket.discovered_at < _day_end(date_to))
    # A merged ticket (并单) is represented by the ticket it was merged into.
    conditions.append(Ticket.merged_into.is_(None))
    total = session.scalar(select(func.count()).select_from(Ticket).where(*conditions)) or 0
    rows = session.scalars(
        select(Ticket)
        .where(*conditions)
        .order_by(Ticket.discovered_at.desc(), Ticket.id.desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return list(rows), total


# -- creating --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemRef:
    """An item of the store as a ticket links it: id plus a snapshot of source, title and URL."""

    item_id: str
    source: str = ""
    channel: str | None = None
    title: str = ""
    url: str | None = None
    published_at: datetime | None = None

    @classmethod
    def from_item(cls, item: Item) -> ItemRef:
        """The reference to a stored item."""
        return cls(
            item_id=item.id,
            source=item.source,
            channel=item.channel,
            title=item.title,
            url=item.url,
            published_at=item.published_at,
        )


def _as_ref(item: ItemRef | Item) -> ItemRef:
    return ItemRef.from_item(item) if isinstance(item, Item) else item


def _timeline(
    session: Session,
    ticket_id: int,
    action: str,
    actor: str,
    at: datetime,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    response_url: str | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        TimelineEntry(
            ticket_id=ticket_id,
            action=action,
            actor=actor,
            at=at,
            from_status=from_status,
            to_status=to_status,
            note=note,
            response_url=response_url,
            version=version,
            detail=detail or {},
        )
    )


def _attach(session: Session, ticket_id: int, refs: Iterable[ItemRef], now: datetime) -> list[str]:
    attached = []
    for ref in refs:
        new_id = insert_ignore(
            session,
            TicketItem.__table__,
            _ticket_item_row(ticket_id, ref, now),
            ["ticket_id", "item_id"],
        )
        if new_id is not None:
            attached.append(ref.item_id)
    return attached


def resolve_merged(session: Session, ticket_ids: Iterable[int]) -> dict[int, int]:
    """For tickets that were merged (并单): the ticket standing for each now, following merges of merges."""
    out: dict[int, int] = {}
    pending = set(ticket_ids)
    seen: set[int] = set()
    while pending:
        rows = session.execute(
            select(Ticket.id, Ticket.merged_into).where(Ticket.id.in_(pending), Ticket.merged_into.is_not(None))
        ).all()
        seen |= pending
        pending = set()
        for tid, into in rows:
            out[tid] = into
            if into not in seen:
                pending.add(into)
    for tid in list(out):
        into, hops = out[tid], 0
        while into in out and hops < 100:
            into, hops = out[into], hops + 1
        out[tid] = into
    return out


def open_or_attach(
    session: Session,
    *,
    title: str,
    severity: str,
    department: str,
    discovered_at: datetime | None = None,
    published_at: datetime | None = None,
    event_id: str | None = None,
    items: Sequence[ItemRef | Item] = (),
    policy: SlaPolicy | None = None,
    actor: str = "system:matching",
) -> tuple[Ticket, bool]:
    """The ticket of (event, department), created with its deadlines if new; the items are linked to it.

    Returns ``(ticket, created)``. Without ``event_id`` the first item's id stands for the event. Safe
    under concurrency: a second creator for the same event attaches instead of failing.
    """
    if severity not in SEVERITY_LABELS:
        raise InvalidInput("severity", f"unknown severity {severity!r} (one of {', '.join(SEVERITY_LABELS)})")
    if not department:
        raise InvalidInput("department", "required")
    refs = [_as_ref(i) for i in items]
    if not event_id and not refs:
        raise InvalidInput("event_id", "a ticket needs an event id or at least one item")
    event_key = event_id or f"item:{refs[0].item_id}"
    policy = policy or ledger_config().policy
    now = clock.now()
    discovered = ensure_aware(discovered_at) if discovered_at else now
    if published_at is None:
        dates = [ensure_aware(r.published_at) for r in refs if r.published_at]
        published_at = min(dates) if dates else None
    published = ensure_aware(published_at) if published_at else None
    row = _new_ticket_row(
        policy,
        title=title,
        severity=severity,
        department=department,
        discovered=discovered,
        published=published,
        event_id=event_id,
        event_key=event_key,
        now=now,
    )
    dues = {"acknowledge": row["ack_due"], "handle": row["handle_due"], "respond": row["respond_due"]}
    new_id = insert_ignore(
        session,
        Ticket.__table__,
        row,
        ["event_key", "department"],
    )
    created = new_id is not None
    if created:
        ticket_id = new_id
        _timeline(
            session,
            ticket_id,
            "create",
            actor,
            now,
            to_status="new",
            version=1,
            detail={"severity": severity, "deadlines": {s: d.isoformat() for s, d in dues.items()}},
        )
    else:
        ticket_id = session.scalar(
            select(Ticket.id).where(Ticket.event_key == event_key, Ticket.department == department)
        )
        # The event's ticket was merged into another (并单): its items go there.
        ticket_id = resolve_merged(session, [ticket_id]).get(ticket_id, ticket_id)
        if published is not None:
            # The event was published when its first item was: keep the earliest time.
            session.execute(
                update(Ticket)
                .where(Ticket.id == ticket_id, or_(Ticket.published_at.is_(None), Ticket.published_at > published))
                .values(published_at=published)
                .execution_options(synchronize_session=False)
            )
    attached = _attach(session, ticket_id, refs, now)
    if attached and not created:
        _timeline(session, ticket_id, "attach_item", actor, now, detail={"items": attached})
    session.flush()
    return get(session, ticket_id), created


@dataclass(frozen=True)
class Opening:
    """One hit as the ledger takes it in a batch: open the (event, department) ticket or attach the item."""

    title: str
    severity: str
    department: str
    item: ItemRef
    discovered_at: datetime
    published_at: datetime | None = None
    event_id: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(event key, department): the ticket's uniqueness key."""
        return (self.event_id or f"item:{self.item.item_id}", self.department)


def open_or_attach_many(
    session: Session, openings: Sequence[Opening], *, policy: SlaPolicy | None = None, actor: str = "system:matching"
) -> dict[tuple[str, str], tuple[int, bool]]:
    """:func:`open_or_attach` for a whole matching batch in a few bulk statements.

    Returns (event key, department) -> (ticket id, created in this call). The first opening of a key
    in the batch gives a new ticket its title, severity and times, as the one-at-a-time path would.
    Concurrency-safe the same way: INSERT ... ON CONFLICT DO NOTHING on the uniqueness keys.
    """
    if not openings:
        return {}
    for opening in openings:
        if opening.severity not in SEVERITY_LABELS:
            raise InvalidInput("severity", f"unknown severity {opening.severity!r}")
        if not opening.department:
            raise InvalidInput("department", "required")
    policy = policy or ledger_config().policy
    now = clock.now()
    first: dict[tuple[str, str], Opening] = {}
    earliest: dict[tuple[str, str], datetime] = {}
    for opening in openings:
        first.setdefault(opening.key, opening)
        if opening.published_at is not None:
            published = ensure_aware(opening.published_at)
            if opening.key not in earliest or published < earliest[opening.key]:
                earliest[opening.key] = published
    rows, deadlines = [], {}
    for key, opening in first.items():
        discovered = ensure_aware(opening.discovered_at)
        row = _new_ticket_row(
            policy,
            title=opening.title,
            severity=opening.severity,
            department=opening.department,
            discovered=discovered,
            published=earliest.get(key),
            event_id=opening.event_id,
            event_key=key[0],
            now=now,
        )
        deadlines[key] = {"acknowledge": row["ack_due"], "handle": row["handle_due"], "respond": row["respond_due"]}
        rows.append(row)
    inserted = insert_ignore_many(
        session, Ticket.__table__, rows, ["event_key", "department"], returning=("id", "event_key", "department")
    )
    created = {(r.event_key, r.department): r.id for r in inserted}
    ids: dict[tuple[str, str], int] = dict(created)
    missing = [key for key in first if key not in ids]
    for chunk in _chunks(missing, 400):
        found = session.execute(
            select(Ticket.id, Ticket.event_key, Ticket.department).where(
                Ticket.event_key.in_({k[0] for k in chunk}), Ticket.department.in_({k[1] for k in chunk})
            )
        ).all()
        wanted = set(chunk)
        ids.update({(r.event_key, r.department): r.id for r in found if (r.event_key, r.department) in wanted})
    # Tickets merged into another (并单): later items of their events go to the ticket standing for them.
    standing = resolve_merged(session, [ids[k] for k in missing if k in ids])
    if standing:
        ids.update({k: standing[ids[k]] for k in missing if k in ids and ids[k] in standing})
    # Existing tickets: the event was published when its first item was, keep the earliest time.
    later = [{"tid": ids[k], "published": earliest[k]} for k in missing if k in earliest and k in ids]
    if later:
        session.execute(
            update(Ticket.__table__)
            .where(
                Ticket.__table__.c.id == bindparam("tid"),
                or_(
                    Ticket.__table__.c.published_at.is_(None), Ticket.__table__.c.published_at > bindparam("published")
                ),
            )
            .values(published_at=bindparam("published")),
            later,
        )
    timeline = [
        {
            "ticket_id": created[key],
            "action": "create",
            "actor": actor,
            "at": now,
            "from_status": None,
            "to_status": "new",
            "note": None,
            "response_url": None,
            "version": 1,
            "detail": {
                "severity": first[key].severity,
                "deadlines": {stage: d.isoformat() for stage, d in deadlines[key].items()},
            },
        }
        for key in created
    ]
    links = []
    for opening in openings:
        links.append(_ticket_item_row(ids[opening.key], opening.item, now))
    unique_links = list({(link["ticket_id"], link["item_id"]): link for link in links}.values())
    attached = insert_ignore_many(
        session, TicketItem.__table__, unique_links, ["ticket_id", "item_id"], returning=("ticket_id", "item_id")
    )
    creators = {created[key]: first[key].item.item_id for key in created}
    by_ticket: dict[int, list[str]] = {}
    for row in attached:
        if creators.get(row.ticket_id) != row.item_id:
            by_ticket.setdefault(row.ticket_id, []).append(row.item_id)
    for ticket_id, item_ids in by_ticket.items():
        timeline.append(
            {
                "ticket_id": ticket_id,
                "action": "attach_item",
                "actor": actor,
                "at": now,
                "from_status": None,
                "to_status": None,
                "note": None,
                "response_url": None,
                "version": None,
                "detail": {"items": item_ids},
            }
        )
    if timeline:
        session.execute(insert(TimelineEntry.__table__), timeline)
    return {key: (ids[key], key in created) for key in first if key in ids}


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def create_ticket(
    session: Session,
    *,
    title: str,
    severity: str,
    department: str,
    discovered_at: datetime | None = None,
    published_at: datetime | None = None,
    event_id: str | None = None,
    items: Sequence[ItemRef | Item] = (),
    policy: SlaPolicy | None = None,
) -> Ticket:
    """The ticket for (event, department): a new one, or the existing one with the items attached."""
    ticket, _created = open_or_attach(
        session,
        title=title,
        severity=severity,
        department=department,
        discovered_at=discovered_at,
        published_at=published_at,
        event_id=event_id,
        items=items,
        policy=policy,
    )
    return ticket


# -- acting ----------------------------------------------------------------------------------------


def save_change(
    session: Session,
    ticket: Ticket,
    expected_version: int,
    values: dict[str, Any],
    *,
    action: str,
    actor: str,
    at: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    response_url: str | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Write ``values`` if the ticket is still at ``expected_version``, with its timeline entry; the new version.

    Raises StaleVersion when another transaction changed the ticket first. The entry is never dated
    before the ticket's latest one: the timeline reads in order even after the clock stepped back.
    """
    if ticket.timeline:
        at = max(at, *(entry.at for entry in ticket.timeline))
    new_version = expected_version + 1
    changed = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.version == expected_version)
        # Any change may move a deadline or meet a stage: the SLA monitor re-plans this ticket next run.
        .values(**values, version=new_version, updated_at=at, next_due_at=Ticket.discovered_at)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        current = session.scalar(select(Ticket.version).where(Ticket.id == ticket.id))
        raise StaleVersion(ticket.id, expected_version, current)
    _timeline(
        session,
        ticket.id,
        action,
        actor,
        at,
        from_status=from_status or ticket.status,
        to_status=to_status or from_status or ticket.status,
        note=note,
        response_url=response_url,
        version=new_version,
        detail=detail,
    )
    session.flush()
    return new_version


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _check_input(
    ticket: Ticket,
    action: str,
    *,
    note: str | None,
    department: str | None,
    response_url: str | None,
    until: datetime | None,
    result: str | None,
    config: LedgerConfig,
    response_type: str | None = None,
) -> None:
    if action == "reassign":
        if not _text(department):
            raise InvalidInput("department", "改派须指定目标单位")
        if config.departments is not None and department not in config.departments:
            raise InvalidInput("department", f"未知的单位 {department!r}（见 departments.yaml）")
        if department == ticket.department and ticket.status != "returned":
            raise InvalidInput("department", "工单已在该单位，无需改派")
    elif action == "return" and not _text(note):
        raise InvalidInput("note", "退件须填写理由")
    elif action == "request_extension":
        if not _text(note):
            raise InvalidInput("note", "申请延期须填写理由")
        if until is None:
            raise InvalidInput("until", "申请延期须填写延期至的时间")
    elif action == "respond":
        url = _text(response_url)
        if response_type not in (None, *RESPONSE_TYPES):
            raise InvalidInput("response_type", f"回应方式应为 {'、'.join(RESPONSE_TYPE_LABELS.values())} 之一")
        online = response_type in (None, "online")
        if online and not url:
            raise InvalidInput("response_url", "网上公开回应须填写公开回应的地址")
        if not online and not _text(note):
            raise InvalidInput("note", f"{RESPONSE_TYPE_LABELS[response_type]}回应须填写回应情况")
        if url and not url.startswith(("http://", "https://")):
            raise InvalidInput("response_url", "须为 http:// 或 https:// 地址")
    elif action == "handle" and not (_text(result) or _text(note)):
        raise InvalidInput("result", "办理须填写办理结果")


def _open_stages(ticket: Ticket) -> list[str]:
    return [s for s in ("handle", "respond") if ticket.met(s) is None]


def act(
    session: Session,
    ticket_id: int,
    principal: Principal,
    action: str,
    note: str | None = None,
    department: str | None = None,
    response_url: str | None = None,
    until: datetime | None = None,
    version: int | None = None,
    result: str | None = None,
    *,
    config: LedgerConfig | None = None,
    response_type: str | None = None,
) -> Ticket:
    """Do ``action`` on the ticket as ``principal``; the ticket after it.

    Raises TicketNotFound (not visible), RoleNotAllowedError (role may never do it), InvalidInput (missing
    or bad input), StaleVersion (``version`` is not the current one, or another action won the race),
    TransitionNotAllowed (not allowed in the current state or at this time).
    """
    if action not in transitions.ACTIONS:
        raise InvalidInput("action", f"unknown action {action!r} (one of {', '.join(transitions.ACTIONS)})")
    config = config or ledger_config()
    ticket = get(session, ticket_id, principal)
    transitions.require_role(principal.role, action)
    if ticket.merged_into is not None:
        raise transitions.TransitionNotAllowed(
            ticket.status, action, f"已并入工单 #{ticket.merged_into}，请在该工单上操作"
        )
    if principal.role == "department" and principal.department != ticket.department:
        raise TicketNotFound(ticket_id)
    until = ensure_aware(until) if until is not None else None
    _check_input(
        ticket,
        action,
        note=note,
        department=department,
        response_url=response_url,
        until=until,
        result=result,
        config=config,
        response_type=response_type,
    )
    expected = ticket.version if version is None else version
    if expected != ticket.version:
        raise StaleVersion(ticket.id, expected, ticket.version)
    outcome = transitions.apply(ticket.status, action, facts_of(ticket))
    now = recorded_now(ticket)
    policy = config.policy
    values: dict[str, Any] = {"status": outcome.status, "escalated": outcome.facts.escalated}
    detail: dict[str, Any] = {}
    note = _text(note)
    if action == "acknowledge":
        values["ack_met_at"] = now
    elif action == "handle":
        values.update(handled=True, handle_met_at=now, result=_text(result) or note)
    elif action == "respond":
        values.update(
            responded=True,
            respond_met_at=now,
            response_url=_text(response_url),
            response_type=response_type or "online",
            response_source=principal.username,
        )
        detail["response_type"] = response_type or "online"
    elif action == "return":
        window = timedelta(hours=config.ledger.return_window_hours)
        if now - ticket.assigned_at > window:
            raise TransitionNotAllowed(
                ticket.status, action, f"退件须在分派后 {config.ledger.return_window_hours:g} 小时内提出"
            )
        values.update(extension_pending=False, extension_until=None, extension_reason=None, extension_stages=None)
    elif action == "reassign":
        dues = policy.after_reassignment(
            severity=ticket.severity,  # type: ignore[arg-type]
            discovered_at=ticket.discovered_at,
            reassigned_at=now,
        )
        detail = {"from_department": ticket.department, "to_department": department}
        values.update(_reset_stages(), department=department, assigned_at=now, ack_from=now, ack_met_at=None)
        values.update(ack_due=dues["acknowledge"], handle_due=dues["handle"], respond_due=dues["respond"])
        values.update(handle_from=ticket.discovered_at, respond_from=ticket.discovered_at)
    elif action == "reopen":
        dues = policy.after_reopen(
            severity=ticket.severity,  # type: ignore[arg-type]
            reopened_at=now,
            current={s: ticket.due(s) for s in STAGES},  # type: ignore[misc]
        )
        values.update(_reset_stages(), handle_due=dues["handle"], respond_due=dues["respond"])
        values.update(handle_from=now, respond_from=now)
    elif action == "request_extension":
        assert until is not None
        stages = [s for s in _open_stages(ticket) if now < ticket.due(s)]
        if not stages:
            raise TransitionNotAllowed(ticket.status, action, "办理、回应时限均已过，不能再申请延期")
        if until <= max(ticket.due(s) for s in stages):
            raise InvalidInput("until", "延期后的时间须晚于现有时限")
        values.update(
            extension_pending=True, extension_until=until, extension_reason=note, extension_stages=",".join(stages)
        )
        detail = {"until": until.isoformat(), "stages": stages}
    elif action == "approve_extension":
        stages = [s for s in (ticket.extension_stages or "").split(",") if s]
        assert ticket.extension_until is not None
        for stage in stages:
            if ticket.met(stage) is None:
                values[f"{STAGE_COLUMNS[stage]}_due"] = max(ticket.due(stage), ticket.extension_until)
        values["extension_pending"] = False
        detail = {"until": ticket.extension_until.isoformat(), "stages": stages}
    elif action == "reject_extension":
        values.update(extension_pending=False, extension_until=None, extension_stages=None)
    elif action == "escalate":
        detail = {"by": principal.username}
    save_change(
        session,
        ticket,
        expected,
        values,
        action=action,
        actor=principal.username,
        at=now,
        to_status=outcome.status,
        note=note,
        response_url=values.get("response_url"),
        detail=detail,
    )
    fresh = get(session, ticket_id)
    if action == "escalate":
        notify_escalation(session, fresh, note=note, by=principal.username, config=config)
    return fresh


def _reset_stages() -> dict[str, Any]:
    return {
        "handled": False,
        "responded": False,
        "handle_met_at": None,
        "respond_met_at": None,
        "response_url": None,
        "response_source": None,
        "result": None,
        "extension_pending": False,
        "extension_until": None,
        "extension_reason": None,
        "extension_stages": None,
    }


def notify_escalation(
    session: Session, ticket: Ticket, *, note: str | None, by: str, config: LedgerConfig | None = None
) -> None:
    """Queue the 督办 notice to the supervisors of ``ticket`` (once per ticket version)."""
    from alerting.outbox import enqueue

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


def change_severity(
    session: Session,
    ticket_id: int,
    principal: Principal,
    severity: str,
    version: int | None = None,
    note: str | None = None,
    *,
    config: LedgerConfig | None = None,
) -> Ticket:
    """Officers re-grade a ticket: open stages get the new severity's deadlines (see SlaPolicy)."""
    if principal.role not in ("officer", "admin"):
        raise transitions.RoleNotAllowedError(principal.role, "change_severity", "调整严重程度")
    if severity not in SEVERITY_LABELS:
        known = "、".join(f"{k}（{v}）" for k, v in SEVERITY_LABELS.items())
        raise InvalidInput("severity", f"未知的严重程度 {severity!r}，可选：{known}")
    config = config or ledger_config()
    ticket = get(session, ticket_id, principal)
    expected = ticket.version if version is None else version
    if expected != ticket.version:
        raise StaleVersion(ticket.id, expected, ticket.version)
    extended = [] if ticket.extension_pending else [s for s in (ticket.extension_stages or "").split(",") if s]
    settled = {s for s in STAGES if ticket.met(s) is not None} | set(extended)
    dues = config.policy.after_severity_change(
        severity=severity,  # type: ignore[arg-type]
        discovered_at=ticket.discovered_at,
        current={s: ticket.due(s) for s in STAGES},  # type: ignore[misc]
        settled=settled,  # type: ignore[arg-type]
    )
    save_change(
        session,
        ticket,
        expected,
        {"severity": severity, **{f"{STAGE_COLUMNS[s]}_due": d for s, d in dues.items()}},
        action="change_severity",
        actor=principal.username,
        at=clock.now(),
        note=_text(note),
        detail={"from": ticket.severity, "to": severity},
    )
    return get(session, ticket_id)


# -- public replies ----------------------------------------------------------------------------------


def record_public_reply(session: Session, item: Item) -> list[int]:
    """Record a public reply found on ``item`` as the respond stage of the tickets linking it.

    The stage is met at the reply's time (``replied_at``, else when the item was fetched) with the
    item's URL as the response; a ticket not yet acknowledged goes straight to responded with no 签收
    (the acknowledge stage is waived). Returns the ids of the tickets updated. A ticket changed
    concurrently is left for the next sweep.
    """
    if not _text(item.reply) or item.channel not in REPLY_CHANNELS:
        return []  # media items carry no official reply, whatever their text says
    replied_at = ensure_aware(item.replied_at or item.fetched_at)
    tickets = session.scalars(
        select(Ticket)
        .join(TicketItem, TicketItem.ticket_id == Ticket.id)
        .where(
            TicketItem.item_id == item.id,
            Ticket.responded.is_(False),
            Ticket.status.in_(("new", "acknowledged", "handled")),
        )
    ).all()
    updated = []
    for ticket in tickets:
        try:
            _record_reply_on(session, ticket, item, replied_at)
        except StaleVersion:
            logger.info("ticket {} changed while recording a public reply; the sweep will retry", ticket.id)
            continue
        updated.append(ticket.id)
    return updated


def recorded_now(ticket: Ticket) -> datetime:
    """The time to record an action at: now, but never before what the ticket already recorded.

    Keeps discovery ≤ 签收 ≤ 办理 ≤ 回应 ≤ 办结 in recorded order even when the clock steps back
    (a corrected system clock, a what-if run).
    """
    floor = [ticket.discovered_at, *(t for t in (ticket.ack_met_at, ticket.handle_met_at) if t is not None)]
    if ticket.respond_met_at is not None:
        floor.append(ticket.respond_met_at)
    if ticket.timeline:
        floor.append(max(entry.at for entry in ticket.timeline))
    return max([clock.now(), *floor])


def _record_reply_on(session: Session, ticket: Ticket, item: Item, replied_at: datetime) -> None:
    """回应 at the reply's time; no 签收 invented. A reply dated before discovery keeps its time (the
    ticket then shows 已在发现前回应); a later one never goes before a stage already recorded (a website
    often gives only the date)."""
    actor = "system:crawler"
    now = recorded_now(ticket)
    version = ticket.version
    facts = facts_of(ticket)
    status = ticket.status
    note = f"在 {item.source} 发现公开答复"
    if replied_at >= ticket.discovered_at:
        replied_at = max([replied_at, *(t for t in (ticket.ack_met_at, ticket.handle_met_at) if t is not None)])
    outcome = transitions.public_reply(status, facts)
    save_change(
        session,
        ticket,
        version,
        {
            "status": outcome.status,
            "responded": True,
            "respond_met_at": replied_at,
            "response_url": item.url,
            "response_source": actor,
        },
        action="respond",
        actor=actor,
        at=now,
        from_status=status,
        to_status=outcome.status,
        note=note,
        response_url=item.url,
        detail={"item_id": item.id, "replied_at": replied_at.isoformat()},
    )


def tickets_waiting_for_reply(session: Session) -> dict[str, list[int]]:
    """item id -> ids of tickets that link it and still wait for a response (hotline/mailbox items)."""
    rows = session.execute(
        select(TicketItem.item_id, Ticket.id)
        .join(Ticket, TicketItem.ticket_id == Ticket.id)
        .where(
            Ticket.responded.is_(False),
            Ticket.status.in_(("new", "acknowledged", "handled")),
            or_(TicketItem.channel.in_(REPLY_CHANNELS), TicketItem.channel.is_(None)),
        )
    ).all()
    out: dict[str, list[int]] = {}
    for item_id, ticket_id in rows:
        out.setdefault(item_id, []).append(ticket_id)
    return out


# -- statistics --------------------------------------------------------------------------------------


def _seconds(start: Any, end: Any, dialect: str) -> Any:
    """SQL for ``end - start`` in seconds, clamped at zero (see timing.elapsed)."""
    if dialect == "postgresql":
        diff = func.extract("epoch", end - start)
    else:  # SQLite keeps naive UTC text, which julianday reads
        diff = (func.julianday(end) - func.julianday(start)) * 86400.0
    return case((diff < 0, 0.0), else_=diff)


def _late_sql(stage: str, now: datetime) -> Any:
    """SQL of timing.stage_late for one stage at ``now``."""
    prefix = STAGE_COLUMNS[stage]
    due, met = getattr(Ticket, f"{prefix}_due"), getattr(Ticket, f"{prefix}_met_at")
    unmet_late = and_(met.is_(None), due < now)
    if stage == "acknowledge":
        unmet_late = and_(unmet_late, Ticket.status.in_(_ACK_NOT_WAIVED))
    return or_(and_(met.is_not(None), met > due), unmet_late)


_ACK_NOT_WAIVED = ("new", "returned")


def stats(
    session: Session,
    principal: Principal,
    *,
    date_from: date | datetime | None = None,
    date_to: date | datetime | None = None,
) -> list[dict[str, Any]]:
    """Per department: counts by status, on-time rates and average hours per stage, time to discover.

    A stage's on-time rate is met-in-time / (met + unmet-past-due); stages still running in time are
    not counted yet. Averages are hours from discovery to the stage being met, over met stages.
    One GROUP BY query in the database (100k tickets in well under a second), never ticket objects.
    """
    conditions: list[Any] = [Ticket.merged_into.is_(None)]
    if principal.role == "department":
        conditions.append(Ticket.department == (principal.department or ""))
    elif not principal.sees_everything:
        return []
    if date_from is not None:
        conditions.append(Ticket.discovered_at >= _day_start(date_from))
    if date_to is not None:
        conditions.append(Ticket.discovered_at < _day_end(date_to))
    now = clock.now()
    dialect = session.get_bind().dialect.name

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    columns: dict[str, Any] = {"total": func.count()}
    for status in transitions.STATUSES:
        columns[f"status:{status}"] = count(Ticket.status == status)
    columns["escalated"] = count(Ticket.escalated.is_(True))
    columns["overdue"] = count(or_(*(_late_sql(stage, now) for stage in STAGES)))
    for stage in STAGES:
        prefix = STAGE_COLUMNS[stage]
        due, met = getattr(Ticket, f"{prefix}_due"), getattr(Ticket, f"{prefix}_met_at")
        columns[f"{stage}:met"] = count(met.is_not(None))
        columns[f"{stage}:in_time"] = count(and_(met.is_not(None), met <= due))
        columns[f"{stage}:late_open"] = count(
            and_(met.is_(None), due < now, Ticket.status.in_(_ACK_NOT_WAIVED))
            if stage == "acknowledge"
            else and_(met.is_(None), due < now)
        )
        columns[f"{stage}:avg"] = func.avg(case((met.is_not(None), _seconds(Ticket.discovered_at, met, dialect))))
    columns["replied_before"] = count(
        and_(Ticket.respond_met_at.is_not(None), Ticket.respond_met_at < Ticket.discovered_at)
    )
    columns["discover_avg"] = func.avg(
        case((Ticket.published_at.is_not(None), _seconds(Ticket.published_at, Ticket.discovered_at, dialect)))
    )
    names = list(columns)
    rows = session.execute(
        select(Ticket.department, *(columns[n].label(f"c{i}") for i, n in enumerate(names)))
        .where(*conditions)
        .group_by(Ticket.department)
        .order_by(Ticket.department)
    ).all()
    out = []
    for record in rows:
        got = dict(zip(names, record[1:], strict=True))
        row: dict[str, Any] = {
            "department": record[0],
            "total": int(got["total"]),
            "by_status": {s: int(got[f"status:{s}"] or 0) for s in transitions.STATUSES},
            "escalated": int(got["escalated"] or 0),
            "overdue": int(got["overdue"] or 0),
        }
        for stage in STAGES:
            met_count = int(got[f"{stage}:met"] or 0)
            decided = met_count + int(got[f"{stage}:late_open"] or 0)
            in_time = int(got[f"{stage}:in_time"] or 0)
            row[f"{stage}_on_time_rate"] = round(in_time / decided, 4) if decided else None
            average = got[f"{stage}:avg"]
            row[f"{stage}_avg_hours"] = round(float(average) / 3600, 2) if met_count and average is not None else None
        row["replied_before_discovery"] = int(got["replied_before"] or 0)
        average = got["discover_avg"]
        row["avg_discover_hours"] = round(float(average) / 3600, 2) if average is not None else None
        out.append(row)
    return out


def _new_ticket_row(
    policy: SlaPolicy,
    *,
    title: str,
    severity: str,
    department: str,
    discovered: datetime,
    published: datetime | None,
    event_id: str | None,
    event_key: str,
    now: datetime,
) -> dict[str, Any]:
    """The columns of a newly opened ticket: one place for the single and the batch insert."""
    dues = policy.deadlines_for(severity, discovered)
    warns = policy.warn_times_for(severity, discovered)
    return {
        "title": title[:2000],
        "status": "new",
        "severity": severity,
        "department": department,
        "discovered_at": discovered,
        "published_at": published,
        "event_id": event_id,
        "event_key": event_key,
        "assigned_at": discovered,
        "ack_from": discovered,
        "ack_due": dues["acknowledge"],
        "handle_from": discovered,
        "handle_due": dues["handle"],
        "respond_from": discovered,
        "respond_due": dues["respond"],
        "handled": False,
        "responded": False,
        "escalated": False,
        "extension_pending": False,
        "version": 1,
        "next_due_at": min(warns.values()),
        "created_at": now,
        "updated_at": now,
    }


def _ticket_item_row(ticket_id: int, ref: Any, now: datetime) -> dict[str, Any]:
    """The columns linking an item to a ticket: one place for the single and the batch insert."""
    return {
        "ticket_id": ticket_id,
        "item_id": ref.item_id,
        "source": ref.source,
        "channel": ref.channel,
        "title": ref.title,
        "url": ref.url,
        "published_at": ensure_aware(ref.published_at) if ref.published_at else None,
        "attached_at": now,
    }
