"""The one table of allowed ticket moves (state machine), pure: no database, no clock.

A ticket has a status and four facts. ``handled`` and ``responded`` are facts next to the status
because a response may be published before handling is done: the status tells the last stage reached,
the facts tell which stages are done, and ``close`` needs both facts whatever the order was.

- ``new`` (待签收) --acknowledge--> ``acknowledged`` (已签收)
- A public reply the crawler finds (``public_reply``, the system's move, no role's) records the respond
  stage from ``new``, ``acknowledged`` or ``handled``; from ``new`` it invents no 签收 (the acknowledge
  stage is waived, see service.ledger.timing).
- ``acknowledged`` --handle--> ``handled``; ``acknowledged`` --respond--> ``responded``
- ``handled`` --respond--> ``responded`` and ``responded`` --handle--> ``handled`` (the other stage done)
- ``handled`` / ``responded`` --close--> ``closed`` only when handled and responded
- ``returned`` (已退件) is a status added to those of the interface: a department sent a ticket that
  is not its own back to the officers (from ``new`` or ``acknowledged``, before handling or responding);
  it waits there until an officer reassigns it (to another department, or back to the same one when
  the return is refused).
- ``reassign`` (改派): back to ``new`` in the other department, stage facts and any pending
  extension request cleared; the 督办 mark stays.
- ``escalate`` (督办): keeps the status and marks the ticket escalated; it may be repeated (each time
  notifies the supervisors again).
- ``reopen``: ``closed`` -> ``acknowledged``: the department already knows the case, so it is not asked
  to acknowledge again, but it must handle and respond again (both facts are cleared).
- Extension requests (申请延期) never change the status: ``request_extension`` needs no pending request,
  ``approve_extension`` / ``reject_extension`` need one. Whether the request came before the deadline is
  a question of time and belongs to the ledger.

Roles: department users do the department's work (acknowledge, handle, respond, close, return,
request_extension) on their own department's tickets (ownership is the ledger's check); officers and
admins decide (reassign, escalate, reopen, approve/reject extensions) and do not fill in a department's
stages for it, so that the ledger stays the department's own record; leaders and auditors change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, get_args

from service.vocabulary import ROLE_LABELS, ROLES
from service.vocabulary import TICKET_STATUS_LABELS as STATUS_LABELS
from service.vocabulary import TICKET_STATUSES as STATUSES

Action = Literal[
    "acknowledge",
    "handle",
    "respond",
    "close",
    "reassign",
    "escalate",
    "reopen",
    "return",
    "request_extension",
    "approve_extension",
    "reject_extension",
]
ACTIONS: tuple[str, ...] = get_args(Action)
ACTION_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "acknowledge": "签收",
        "handle": "办理",
        "respond": "回应",
        "close": "办结",
        "reassign": "改派",
        "escalate": "督办",
        "reopen": "重新打开",
        "return": "退件",
        "request_extension": "申请延期",
        "approve_extension": "批准延期",
        "reject_extension": "驳回延期",
    }
)

_DEPARTMENT = frozenset({"department"})
_DECIDERS = frozenset({"officer", "admin"})
ACTION_ROLES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "acknowledge": _DEPARTMENT,
        "handle": _DEPARTMENT,
        "respond": _DEPARTMENT,
        "close": _DEPARTMENT,
        "return": _DEPARTMENT,
        "request_extension": _DEPARTMENT,
        "reassign": _DECIDERS,
        "escalate": _DECIDERS,
        "reopen": _DECIDERS,
        "approve_extension": _DECIDERS,
        "reject_extension": _DECIDERS,
    }
)

# How a requirement on a fact reads, when met (table) and when not met (refusal reason).
_FACT_TEXT: Mapping[tuple[str, bool], tuple[str, str]] = MappingProxyType(
    {
        ("handled", True): ("已办理", "尚未办理"),
        ("handled", False): ("尚未办理", "已经办理过"),
        ("responded", True): ("已回应", "尚未回应"),
        ("responded", False): ("尚未回应", "已经回应过"),
        ("extension_pending", True): ("有待审批的延期申请", "没有待审批的延期申请"),
        ("extension_pending", False): ("没有待审批的延期申请", "已有待审批的延期申请"),
    }
)


@dataclass(frozen=True)
class Facts:
    """What is true of a ticket besides its status."""

    handled: bool = False
    responded: bool = False
    extension_pending: bool = False
    escalated: bool = False


@dataclass(frozen=True)
class Move:
    """One allowed move: from ``source`` by ``action`` to ``target`` (None keeps the status)."""

    source: str
    action: str
    target: str | None
    requires: Mapping[str, bool] = field(default_factory=dict)
    effect: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """Status and facts after a move."""

    status: str
    facts: Facts


# The name is part of the brief the ledger and API are written against; an Error suffix would rename it.
class TransitionNotAllowed(Exception):
    """``action`` is not allowed on a ticket in ``status`` (the API answers 409)."""

    def __init__(self, status: str, action: str, reason: str) -> None:
        self.status = status
        self.action = action
        self.reason = reason
        label = STATUS_LABELS.get(status, status)
        super().__init__(f"工单状态为“{label}”，不能{ACTION_LABELS.get(action, action)}：{reason}")


class RoleNotAllowedError(Exception):
    """``role`` may never do ``action`` (the API answers 403)."""

    def __init__(self, role: str, action: str, label: str | None = None) -> None:
        self.role = role
        self.action = action
        super().__init__(f"{ROLE_LABELS.get(role, role)}无权{label or ACTION_LABELS.get(action, action)}")


_RESET_STAGES = MappingProxyType({"handled": False, "responded": False, "extension_pending": False})
_WORKING = ("acknowledged", "handled", "responded")

MOVES: tuple[Move, ...] = (
    Move("new", "acknowledge", "acknowledged"),
    Move("acknowledged", "handle", "handled", effect={"handled": True}),
    Move("acknowledged", "respond", "responded", effect={"responded": True}),
    Move("handled", "respond", "responded", requires={"responded": False}, effect={"responded": True}),
    Move("responded", "handle", "handled", requires={"handled": False}, effect={"handled": True}),
    *(
        Move(
            s,
            "close",
            "closed",
            requires={"handled": True, "responded": True},
            effect={"extension_pending": False},
        )
        for s in ("handled", "responded")
    ),
    Move("new", "return", "returned"),
    Move("acknowledged", "return", "returned", effect={"extension_pending": False}),
    *(Move(s, "reassign", "new", effect=_RESET_STAGES) for s in ("new", *_WORKING, "returned")),
    *(Move(s, "escalate", None, effect={"escalated": True}) for s in ("new", *_WORKING)),
    Move("closed", "reopen", "acknowledged", effect=_RESET_STAGES),
    *(
        Move(
            s,
            "request_extension",
            None,
            requires={"extension_pending": False},
            effect={"extension_pending": True},
        )
        for s in _WORKING
    ),
    *(
        Move(s, action, None, requires={"extension_pending": True}, effect={"extension_pending": False})
        for action in ("approve_extension", "reject_extension")
        for s in _WORKING
    ),
)

_BY_KEY: Mapping[tuple[str, str], Move] = MappingProxyType({(m.source, m.action): m for m in MOVES})
if len(_BY_KEY) != len(MOVES):  # pragma: no cover - guards edits of the table itself
    raise RuntimeError("the ticket move table has two rows for the same status and action")


def _check_names(status: str, action: str | None = None, role: str | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown ticket status {status!r} (one of {', '.join(STATUSES)})")
    if action is not None and action not in ACTIONS:
        raise ValueError(f"unknown ticket action {action!r} (one of {', '.join(ACTIONS)})")
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")


def consistency_error(status: str, facts: Facts) -> str | None:
    """Why ``facts`` cannot go with ``status`` (a corrupt ledger row), or None when they can."""
    _check_names(status)
    if status in ("new", "acknowledged", "returned") and (facts.handled or facts.responded):
        return f"status {status} with the handle/respond stage already done"
    if status == "handled" and not facts.handled:
        return "status handled without the handled fact"
    if status == "responded" and not facts.responded:
        return "status responded without the responded fact"
    if status == "closed" and not (facts.handled and facts.responded):
        return "status closed without both handled and responded"
    if status in ("new", "returned", "closed") and facts.extension_pending:
        return f"status {status} with a pending extension request"
    return None


def _find(status: str, action: str, facts: Facts) -> Move:
    _check_names(status, action)
    problem = consistency_error(status, facts)
    if problem is not None:
        raise ValueError(f"inconsistent ticket: {problem}")
    move = _BY_KEY.get((status, action))
    if move is None:
        raise TransitionNotAllowed(status, action, "当前状态下不允许此操作")
    for name, wanted in move.requires.items():
        if getattr(facts, name) != wanted:
            raise TransitionNotAllowed(status, action, _FACT_TEXT[(name, wanted)][1])
    return move


def apply(status: str, action: str, facts: Facts) -> Outcome:
    """Status and facts after ``action``; raises TransitionNotAllowed when the table has no such move."""
    move = _find(status, action, facts)
    return Outcome(move.target or status, replace(facts, **move.effect))


def public_reply(status: str, facts: Facts) -> Outcome:
    """Status and facts after the crawler found the department's public reply (respond, even from new)."""
    if status == "new":
        _find(status, "acknowledge", facts)  # consistency checks of an ordinary move from new
        return Outcome("responded", replace(facts, responded=True))
    return apply(status, "respond", facts)


def next_status(status: str, action: str, facts: Facts) -> str:
    """The status after ``action``; raises TransitionNotAllowed when the table has no such move."""
    return apply(status, action, facts).status


def may_act(role: str, action: str) -> bool:
    """True when ``role`` may ever do ``action`` (ownership of the ticket is checked elsewhere)."""
    _check_names(STATUSES[0], action, role)
    return role in ACTION_ROLES[action]


def require_role(role: str, action: str) -> None:
    """Raise RoleNotAllowedError unless ``role`` may do ``action``."""
    if not may_act(role, action):
        raise RoleNotAllowedError(role, action)


def allowed_actions(status: str, facts: Facts, role: str) -> list[str]:
    """The actions ``role`` can do now on a ticket in ``status`` with ``facts``, in table order."""
    _check_names(status, role=role)
    allowed = []
    for action in ACTIONS:
        if role not in ACTION_ROLES[action]:
            continue
        try:
            _find(status, action, facts)
        except TransitionNotAllowed:
            continue
        allowed.append(action)
    return allowed


def _code(name: str, labels: Mapping[str, str]) -> str:
    return f"`{name}` {labels[name]}"


def transitions_markdown() -> str:
    """The move table as Markdown (the README's copy of it)."""
    lines = [
        "| 当前状态 | 操作 | 条件 | 操作后状态 | 效果 | 可操作角色 |",
        "|---|---|---|---|---|---|",
    ]
    for move in MOVES:
        condition = "，".join(_FACT_TEXT[(k, v)][0] for k, v in move.requires.items()) or "—"
        target = _code(move.target, STATUS_LABELS) if move.target else "不变"
        effect = _effect_text(move)
        roles = "、".join(ROLE_LABELS[r] for r in ROLES if r in ACTION_ROLES[move.action])
        lines.append(
            f"| {_code(move.source, STATUS_LABELS)} | {_code(move.action, ACTION_LABELS)} | {condition} "
            f"| {target} | {effect} | {roles} |"
        )
    return "\n".join(lines) + "\n"


def _effect_text(move: Move) -> str:
    if move.effect == _RESET_STAGES:
        return "清除办理、回应记录和待审批的延期申请"
    if move.action == "approve_extension":
        return "按申请的日期延长时限"
    if move.action == "reject_extension":
        return "时限不变"
    texts = {
        ("handled", True): "记为已办理",
        ("responded", True): "记为已回应",
        ("escalated", True): "标记督办",
        ("extension_pending", True): "延期申请待审批",
        ("extension_pending", False): "撤回待审批的延期申请（如有）",
    }
    return "，".join(texts[(k, v)] for k, v in move.effect.items()) or "—"
