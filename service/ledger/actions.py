"""Acting on a ticket: the action table maps each action of the vocabulary to its one handler.

:func:`act` does what every action shares, in this order (which decides the HTTP answer when several
things are wrong): the ticket must be visible (404), the role allowed (403), the ticket not merged and
the input complete (422), the version current (409), the move allowed now (409). Then the action's
handler sets what the move changes, :func:`service.ledger.records.save_change` writes it with its
timeline entry, and the handler's ``after`` step (the 督办 notice) runs on the saved ticket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from service.clock import ensure_aware
from service.ledger import transitions
from service.ledger.config import LedgerConfig, ledger_config
from service.ledger.errors import InvalidInput, StaleVersion, TicketNotFound
from service.ledger.escalation import notify_escalation
from service.ledger.models import STAGE_COLUMNS, Ticket
from service.ledger.records import recorded_now, save_change, text_or_none
from service.ledger.service import facts_of, get
from service.ledger.transitions import TransitionNotAllowed
from service.principal import Principal
from service.vocabulary import RESPONSE_TYPE_LABELS, RESPONSE_TYPES, SEVERITY_LABELS, STAGES, is_severity


@dataclass(frozen=True)
class ActionInput:
    """What the caller sent with the action (``note`` without surrounding blanks, ``until`` time-zone aware)."""

    note: str | None = None
    department: str | None = None
    response_url: str | None = None
    until: datetime | None = None
    result: str | None = None
    response_type: str | None = None
    severity: str | None = None


@dataclass
class Step:
    """One action under way: the ticket as read, the input, and what the move changes (filled by the handler)."""

    session: Session
    ticket: Ticket
    principal: Principal
    config: LedgerConfig
    given: ActionInput
    now: datetime
    values: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


def _no_input_needed(ticket: Ticket, given: ActionInput, config: LedgerConfig) -> None:
    """The action takes no input beyond an optional note."""


@dataclass(frozen=True)
class ActionHandler:
    """One action's work: ``check`` the input before the version and the move are checked, ``apply`` the
    move's changes to ``step.values``/``step.detail``, then ``after`` on the saved ticket.

    A status move is a row of the transition table, which decides who may do it and where it leads. An
    action that changes a ticket without moving its status (re-grading) names its own ``roles`` and the
    ``refusal`` a role outside them is told.
    """

    apply: Callable[[Step], None]
    check: Callable[[Ticket, ActionInput, LedgerConfig], None] = _no_input_needed
    after: Callable[[Step, Ticket], None] | None = None
    roles: frozenset[str] | None = None
    refusal: str | None = None

    @property
    def moves_status(self) -> bool:
        return self.roles is None

    def require_role(self, role: str, action: str) -> None:
        """RoleNotAllowedError unless ``role`` may ever do ``action``."""
        if self.roles is None:
            transitions.require_role(role, action)
        elif role not in self.roles:
            raise transitions.RoleNotAllowedError(role, action, self.refusal)


def _reset_stages() -> dict[str, Any]:
    return {
        "handled": False,
        "responded": False,
        "handle_met_at": None,
        "respond_met_at": None,
        "response_url": None,
        "response_note": None,
        "response_source": None,
        "result": None,
        "extension_pending": False,
        "extension_until": None,
        "extension_reason": None,
        "extension_stages": None,
    }


def _open_stages(ticket: Ticket) -> list[str]:
    return [s for s in ("handle", "respond") if ticket.met(s) is None]


# -- the handlers, one per action -------------------------------------------------------------------


def _acknowledge(step: Step) -> None:
    """签收: the acknowledge stage is met now."""
    step.values["ack_met_at"] = step.now


def _check_handle(ticket: Ticket, given: ActionInput, config: LedgerConfig) -> None:
    if not (text_or_none(given.result) or given.note):
        raise InvalidInput("result", "办理须填写办理结果")


def _handle(step: Step) -> None:
    """办理: the handle stage is met now, with its result (the note when no result is given).

    The timeline entry keeps what a ledger shows of the handling: the result (the ticket's own ``result``
    is cleared by 重新打开), the deadline it was measured against and whether it was met in time, and the
    handler's department."""
    ticket = step.ticket
    result = text_or_none(step.given.result) or step.given.note
    step.values.update(handled=True, handle_met_at=step.now, result=result)
    due = ticket.due("handle")
    step.detail = {"result": result, "handle_due": due.isoformat(), "on_time": step.now <= due}
    if step.principal.department:
        step.detail["department"] = step.principal.department


def _check_respond(ticket: Ticket, given: ActionInput, config: LedgerConfig) -> None:
    url = text_or_none(given.response_url)
    response_type = given.response_type
    if response_type not in (None, *RESPONSE_TYPES):
        raise InvalidInput("response_type", f"回应方式应为 {'、'.join(RESPONSE_TYPE_LABELS.values())} 之一")
    online = response_type in (None, "online")
    if online and not url:
        raise InvalidInput("response_url", "网上公开回应须填写公开回应的地址")
    if not online and not given.note:
        raise InvalidInput("note", f"{RESPONSE_TYPE_LABELS[response_type or 'online']}回应须填写回应情况")
    if url and not _web_address(url):
        raise InvalidInput(
            "response_url", "回应链接须为完整的 http:// 或 https:// 网址，例如 https://www.gov.cn/hd/1.html"
        )


def _web_address(url: str) -> bool:
    """Whether ``url`` is an http(s) address with a host and no blanks (the page where the response is public)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)


def _respond(step: Step) -> None:
    """回应: the respond stage is met now, by the caller, online at a URL or by another response type."""
    response_type = step.given.response_type or "online"
    step.values.update(
        responded=True,
        respond_met_at=step.now,
        response_url=text_or_none(step.given.response_url),
        response_type=response_type,
        response_note=step.given.note or None,
        response_source=step.principal.username,
    )
    step.detail["response_type"] = response_type


def _close(step: Step) -> None:
    """办结: the status move is the whole change (the transition table requires both stages met)."""


def _check_return(ticket: Ticket, given: ActionInput, config: LedgerConfig) -> None:
    if not given.note:
        raise InvalidInput("note", "退件须填写理由")


def _return(step: Step) -> None:
    """退件: only within the return window after assignment; a pending extension request lapses."""
    ledger = step.config.ledger
    if step.now - step.ticket.assigned_at > timedelta(hours=ledger.return_window_hours):
        raise TransitionNotAllowed(
            step.ticket.status, "return", f"退件须在分派后 {ledger.return_window_hours:g} 小时内提出"
        )
    step.values.update(extension_pending=False, extension_until=None, extension_reason=None, extension_stages=None)


def _check_reassign(ticket: Ticket, given: ActionInput, config: LedgerConfig) -> None:
    department = given.department
    if not text_or_none(department):
        raise InvalidInput("department", "改派须指定目标单位")
    if config.departments is not None and department not in config.departments:
        raise InvalidInput("department", f"未知的单位 {department!r}（见 departments.yaml）")
    if department == ticket.department and ticket.status != "returned":
        raise InvalidInput("department", "工单已在该单位，无需改派")


def _reassign(step: Step) -> None:
    """改派: a new department starts over (stages cleared), acknowledging from now, deadlines per the policy."""
    ticket, now = step.ticket, step.now
    dues = step.config.policy.after_reassignment(
        severity=ticket.severity,
        discovered_at=ticket.discovered_at,
        reassigned_at=now,
    )
    step.detail = {"from_department": ticket.department, "to_department": step.given.department}
    step.values.update(
        _reset_stages(), department=step.given.department, assigned_at=now, ack_from=now, ack_met_at=None
    )
    step.values.update(ack_due=dues["acknowledge"], handle_due=dues["handle"], respond_due=dues["respond"])
    step.values.update(handle_from=ticket.discovered_at, respond_from=ticket.discovered_at)


def _escalate(step: Step) -> None:
    """督办: the status stays, the ticket is marked escalated (by the transition's facts)."""
    step.detail = {"by": step.principal.username}


def _notify_supervisors(step: Step, saved: Ticket) -> None:
    notify_escalation(step.session, saved, note=step.given.note, by=step.principal.username, config=step.config)


def _reopen(step: Step) -> None:
    """重新打开: handle and respond again, with deadlines counted from now per the policy."""
    ticket = step.ticket
    dues = step.config.policy.after_reopen(
        severity=ticket.severity,
        reopened_at=step.now,
        current={s: ticket.due(s) for s in STAGES},
    )
    step.values.update(_reset_stages(), handle_due=dues["handle"], respond_due=dues["respond"])
    step.values.update(handle_from=step.now, respond_from=step.now)


def _check_request_extension(ticket: Ticket, given: ActionInput, config: LedgerConfig) -> None:
    if not given.note:
        raise InvalidInput("note", "申请延期须填写理由")
    if given.until is None:
        raise InvalidInput("until", "申请延期须填写延期至的时间")


def _request_extension(step: Step) -> None:
    """申请延期: for the open stages still in time, to a time later than their deadlines."""
    ticket, until = step.ticket, step.given.until
    assert until is not None
    stages = [s for s in _open_stages(ticket) if step.now < ticket.due(s)]
    if not stages:
        raise TransitionNotAllowed(ticket.status, "request_extension", "办理、回应时限均已过，不能再申请延期")
    if until <= max(ticket.due(s) for s in stages):
        raise InvalidInput("until", "延期后的时间须晚于现有时限")
    step.values.update(
        extension_pending=True,
        extension_until=until,
        extension_reason=step.given.note,
        extension_stages=",".join(stages),
    )
    step.detail = {"until": until.isoformat(), "stages": stages}


def _approve_extension(step: Step) -> None:
    """批准延期: the requested stages not yet met get the requested deadline (never an earlier one)."""
    ticket = step.ticket
    stages = [s for s in (ticket.extension_stages or "").split(",") if s]
    assert ticket.extension_until is not None
    for stage in stages:
        if ticket.met(stage) is None:
            step.values[f"{STAGE_COLUMNS[stage]}_due"] = max(ticket.due(stage), ticket.extension_until)
    step.values["extension_pending"] = False
    step.detail = {"until": ticket.extension_until.isoformat(), "stages": stages}


def _reject_extension(step: Step) -> None:
    """驳回延期: the request is dropped, the deadlines stay."""
    step.values.update(extension_pending=False, extension_until=None, extension_stages=None)


def _check_severity(ticket: Ticket, given: ActionInput, config: LedgerConfig) -> None:
    if not is_severity(given.severity):
        known = "、".join(f"{k}（{v}）" for k, v in SEVERITY_LABELS.items())
        raise InvalidInput("severity", f"未知的严重程度 {given.severity!r}，可选：{known}")


def _change_severity(step: Step) -> None:
    """调整严重程度: open stages get the new severity's deadlines (see SlaPolicy); met stages and those
    under an approved extension keep theirs. The status does not move."""
    ticket, severity = step.ticket, step.given.severity
    assert is_severity(severity)  # _check_severity ran first
    extended = [] if ticket.extension_pending else [s for s in (ticket.extension_stages or "").split(",") if s]
    dues = step.config.policy.after_severity_change(
        severity=severity,
        discovered_at=ticket.discovered_at,
        current={s: ticket.due(s) for s in STAGES},
        settled={s for s in STAGES if ticket.met(s) is not None or s in extended},
    )
    step.values.update(severity=severity, **{f"{STAGE_COLUMNS[s]}_due": d for s, d in dues.items()})
    step.detail = {"from": ticket.severity, "to": severity}


# Officers and admins re-grade (its own endpoint, PUT .../severity); the others are told what was refused.
_REGRADERS = frozenset({"officer", "admin"})

ACTION_TABLE: Mapping[str, ActionHandler] = MappingProxyType(
    {
        "acknowledge": ActionHandler(_acknowledge),
        "handle": ActionHandler(_handle, check=_check_handle),
        "respond": ActionHandler(_respond, check=_check_respond),
        "close": ActionHandler(_close),
        "reassign": ActionHandler(_reassign, check=_check_reassign),
        "escalate": ActionHandler(_escalate, after=_notify_supervisors),
        "reopen": ActionHandler(_reopen),
        "return": ActionHandler(_return, check=_check_return),
        "request_extension": ActionHandler(_request_extension, check=_check_request_extension),
        "approve_extension": ActionHandler(_approve_extension),
        "reject_extension": ActionHandler(_reject_extension),
        "change_severity": ActionHandler(
            _change_severity, check=_check_severity, roles=_REGRADERS, refusal="调整严重程度"
        ),
    }
)


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
    severity: str | None = None,
) -> Ticket:
    """Do ``action`` on the ticket as ``principal``; the ticket after it.

    Raises TicketNotFound (not visible), RoleNotAllowedError (role may never do it), InvalidInput (missing
    or bad input), StaleVersion (``version`` is not the current one, or another action won the race),
    TransitionNotAllowed (not allowed in the current state or at this time).
    """
    handler = ACTION_TABLE.get(action)
    if handler is None:
        raise InvalidInput("action", f"未知的操作 {action!r}，可选：{'、'.join(ACTION_TABLE)}")
    config = config or ledger_config()
    if not handler.moves_status:
        # Re-grading refuses another role before the ticket is read: 403 whichever ticket was named.
        handler.require_role(principal.role, action)
    ticket = get(session, ticket_id, principal)
    handler.require_role(principal.role, action)
    if ticket.merged_into is not None:
        raise TransitionNotAllowed(ticket.status, action, f"已并入工单 #{ticket.merged_into}，请在该工单上操作")
    if principal.role == "department" and principal.department != ticket.department:
        raise TicketNotFound(ticket_id)
    given = ActionInput(
        note=text_or_none(note),
        department=department,
        response_url=response_url,
        until=ensure_aware(until) if until is not None else None,
        result=result,
        response_type=response_type,
        severity=severity,
    )
    # A stale version is answered before the input is checked against the current state: a writer who
    # lost the race must be told to reload (409), not that its input no longer fits a ticket it never saw.
    expected = ticket.version if version is None else version
    if expected != ticket.version:
        raise StaleVersion(ticket.id, expected, ticket.version)
    handler.check(ticket, given, config)
    values, to_status = _status_move(handler, ticket, action)
    step = Step(
        session=session,
        ticket=ticket,
        principal=principal,
        config=config,
        given=given,
        now=recorded_now(ticket),
        values=values,
    )
    handler.apply(step)
    save_change(
        session,
        ticket,
        expected,
        step.values,
        action=action,
        actor=principal.username,
        at=step.now,
        to_status=to_status,
        note=given.note,
        response_url=step.values.get("response_url"),
        detail=step.detail,
    )
    saved = get(session, ticket_id)
    if handler.after is not None:
        handler.after(step, saved)
    return saved


def _status_move(handler: ActionHandler, ticket: Ticket, action: str) -> tuple[dict[str, Any], str | None]:
    """Where the transition table moves the ticket (the values it sets, the new status); none for re-grading."""
    if not handler.moves_status:
        return {}, None
    outcome = transitions.apply(ticket.status, action, facts_of(ticket))
    return {"status": outcome.status, "escalated": outcome.facts.escalated}, outcome.status
