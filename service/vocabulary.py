"""The shared words of the product, defined once: every layer and every API schema uses these.

Severity, deadline stage, item channel, ticket status, user role and alert state each have one ``Literal`` type (for
type checking and the OpenAPI schema), one tuple of the values in their natural order, and one table of
the Chinese labels the console, notifications and exports show. Nothing here imports the rest of the
product, so the crawl stage, the ledger and the notifiers can all depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, TypeGuard, get_args

Severity = Literal["minor", "normal", "major", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)  # mildest first
SEVERITY_RANK: Mapping[str, int] = MappingProxyType({s: rank for rank, s in enumerate(SEVERITIES)})
SEVERITY_LABELS: Mapping[str, str] = MappingProxyType(
    {"minor": "一般", "normal": "较大", "major": "重大", "critical": "特别重大"}
)


def is_severity(value: object) -> TypeGuard[Severity]:
    """Whether ``value`` is one of the severities (input from files and requests is checked with this)."""
    return value in SEVERITIES


# Severe enough to break quiet hours and to escalate a missed response deadline.
URGENT_SEVERITIES: tuple[Severity, ...] = ("major", "critical")

Stage = Literal["acknowledge", "handle", "respond"]
STAGES: tuple[Stage, ...] = get_args(Stage)  # in the order a ticket meets them
STAGE_LABELS: Mapping[str, str] = MappingProxyType({"acknowledge": "签收", "handle": "办理", "respond": "回应"})

Channel = Literal["hotline", "mailbox", "media"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
CHANNEL_LABELS: Mapping[str, str] = MappingProxyType({"hotline": "12345热线", "mailbox": "领导信箱", "media": "媒体"})

TicketStatus = Literal["new", "acknowledged", "handled", "responded", "closed", "returned"]
TICKET_STATUSES: tuple[TicketStatus, ...] = get_args(TicketStatus)
TICKET_STATUS_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "new": "待签收",
        "acknowledged": "已签收",
        "handled": "已办理",
        "responded": "已回应",
        "closed": "已办结",
        "returned": "已退件",
    }
)

Role = Literal["admin", "officer", "department", "leader", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)


def is_role(value: object) -> TypeGuard[Role]:
    """Whether ``value`` is one of the roles."""
    return value in ROLES


ROLE_LABELS: Mapping[str, str] = MappingProxyType(
    {"admin": "管理员", "officer": "舆情专员", "department": "责任单位", "leader": "领导", "auditor": "审计员"}
)

ResponseType = Literal["online", "phone", "written", "in_person", "other"]
RESPONSE_TYPES: tuple[ResponseType, ...] = get_args(ResponseType)
RESPONSE_TYPE_LABELS: Mapping[str, str] = MappingProxyType(
    {"online": "网上公开", "phone": "电话", "written": "书面", "in_person": "当面", "other": "其他"}
)

AlertState = Literal["new", "acknowledged", "noise"]
ALERT_STATES: tuple[AlertState, ...] = get_args(AlertState)
ALERT_STATE_LABELS: Mapping[str, str] = MappingProxyType({"new": "未处理", "acknowledged": "已确认", "noise": "误报"})
