"""API shapes of the ledger: tickets as the contract names them, the action body, statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.api_fields import InputDateTime, LocalDateTime
from service.ledger import transitions
from service.ledger.models import Ticket
from service.ledger.related import RelatedTicket
from service.ledger.service import allowed_actions_for, overdue, remaining, time_left
from service.ledger.timing import replied_before_discovery, stage_waived
from service.masking import mask_for, note_reveal
from service.principal import Principal
from service.vocabulary import STAGES, ResponseType

Action = transitions.Action


class StageTimes(BaseModel):
    acknowledge: LocalDateTime | None = None
    handle: LocalDateTime | None = None
    respond: LocalDateTime | None = None


class TicketItemRead(BaseModel):
    item_id: str
    source: str
    channel: str | None
    title: str
    url: str | None
    published_at: LocalDateTime | None
    order_no: str | None = None
    # From the item store (null when it cannot be reached): the source's own number (12345 工单号), the
    # text as crawled, and the public reply.
    external_id: str | None = None
    content: str | None = None
    reply: str | None = None
    replied_at: LocalDateTime | None = None


class TimelineRead(BaseModel):
    action: str
    actor: str
    at: LocalDateTime
    from_status: str | None
    to_status: str | None
    note: str | None
    response_url: str | None = None
    # What changed beyond the status: target department of 改派, new deadlines of 批准延期, response type ...
    detail: dict[str, Any] = Field(default_factory=dict)
    # 并单: the ticket an entry comes from when it was copied in by a merge (null for the ticket's own).
    from_ticket: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_ticket(cls, value: Any) -> Any:
        detail = getattr(value, "detail", None)
        if isinstance(detail, dict) and "from_ticket" in detail:
            return {name: getattr(value, name, None) for name in cls.model_fields if name != "from_ticket"} | {
                "from_ticket": detail["from_ticket"]
            }
        return value

    def masked_for(self, principal: Principal) -> TimelineRead:
        """A copy with the free text (note, the 办理 result in ``detail``) masked for ``principal``."""
        detail = self.detail
        free = [key for key in TIMELINE_FREE_TEXT if isinstance(detail.get(key), str)]
        if free:
            detail = detail | {key: mask_for(principal, detail[key]) for key in free}
        return self.model_copy(update={"note": mask_for(principal, self.note), "detail": detail})


# Keys of a timeline entry's detail that hold what a person wrote (masked like the note).
TIMELINE_FREE_TEXT = ("result",)


class ExtensionRead(BaseModel):
    pending: bool
    until: LocalDateTime | None
    reason: str | None
    stages: list[str]


class TicketSummary(BaseModel):
    """A ticket in a list: everything but its items and timeline."""

    id: int
    title: str
    status: str
    severity: str
    department: str
    discovered_at: LocalDateTime
    published_at: LocalDateTime | None
    event_id: str | None
    deadlines: StageTimes
    met: StageTimes
    overdue: dict[str, bool]
    time_left: dict[str, float | None] = Field(
        description="seconds to each deadline; negative when past; null once met"
    )
    # The same time said as a user reads it, in the unit each stage's deadline counts in (sla.yaml): working
    # days for wd stages (剩 2 个工作日, 今日 23:59 到期, 已超期 1 个工作日), hours and minutes otherwise.
    time_left_workdays: dict[str, int | None] = Field(
        default_factory=dict,
        description="working-day stages: working days left after today up to the due day (0: due today); "
        "negative: working days overdue; null for natural-time stages and once met",
    )
    time_left_text: dict[str, str | None] = Field(
        default_factory=dict, description="剩余时间的中文表述（工作日时限按工作日）；null once met"
    )
    escalated: bool
    version: int
    result: str | None
    response_url: str | None
    response_type: str | None = None
    extension: ExtensionRead | None
    allowed_actions: list[str]
    # Reposts of one event attach to its ticket: how many items, from how many sources.
    item_count: int = 0
    source_count: int = 0
    # The first item's original page on the source site (the 12345 work order, the letter, the article).
    source_url: str | None = None
    # 工单号: the source's own number for it (12345 工单号 GD…, 信件编号), from the first item that has one.
    order_no: str | None = None
    # 并单/拆单: the ticket this one was merged into, the tickets merged into it, the ticket it was split from.
    merged_into: int | None = None
    merged_from: list[int] = Field(default_factory=list)
    split_from: int | None = None
    # 已在发现前回应: the public reply predates discovery (counted on time, 0 hours; see README).
    replied_before_discovery: bool = False
    # The acknowledge stage was skipped: the department answered in public before anyone acknowledged.
    acknowledge_waived: bool = False

    @classmethod
    def of(cls, ticket: Ticket, principal: Principal, now: datetime, **extra: Any) -> Self:
        """The API view of ``ticket`` for ``principal`` at ``now`` (unmasked: mask with mask_for)."""
        extension = None
        if ticket.extension_until is not None:
            extension = ExtensionRead(
                pending=ticket.extension_pending,
                until=ticket.extension_until,
                reason=ticket.extension_reason,
                stages=[s for s in (ticket.extension_stages or "").split(",") if s],
            )
        left = remaining(ticket, now)
        return cls(
            id=ticket.id,
            title=ticket.title,
            status=ticket.status,
            severity=ticket.severity,
            department=ticket.department,
            discovered_at=ticket.discovered_at,
            published_at=ticket.published_at,
            event_id=ticket.event_id,
            deadlines=StageTimes(**{s: ticket.due(s) for s in STAGES}),
            met=StageTimes(**{s: ticket.met(s) for s in STAGES}),
            overdue=overdue(ticket, now),
            time_left=time_left(ticket, now),
            time_left_workdays={s: r.workdays if r else None for s, r in left.items()},
            time_left_text={s: r.text if r else None for s, r in left.items()},
            escalated=ticket.escalated,
            version=ticket.version,
            result=ticket.result,
            response_url=ticket.response_url,
            response_type=ticket.response_type,
            extension=extension,
            allowed_actions=allowed_actions_for(ticket, principal),
            item_count=len(ticket.items),
            source_url=next((i.url for i in ticket.items if i.url), None),
            order_no=next((i.order_no for i in ticket.items if i.order_no), None),
            source_count=len({i.source for i in ticket.items}),
            merged_into=ticket.merged_into,
            merged_from=[int(i) for i in (ticket.merged_from or "").split(",") if i],
            split_from=ticket.split_from,
            replied_before_discovery=replied_before_discovery(ticket.discovered_at, ticket.respond_met_at),
            acknowledge_waived=stage_waived(ticket.status, "acknowledge", ticket.ack_met_at),
            **extra,
        )

    def masked_for(self, principal: Principal) -> Self:
        """A copy with personal data in free text masked unless ``principal`` may see it (URLs stay)."""
        if principal.sees_personal_data:
            note_reveal(self)
            return self
        update: dict[str, Any] = {"title": mask_for(principal, self.title), "result": mask_for(principal, self.result)}
        if self.extension is not None:
            update["extension"] = self.extension.model_copy(
                update={"reason": mask_for(principal, self.extension.reason)}
            )
        if isinstance(self, TicketRead):
            update["items"] = [
                i.model_copy(
                    update={
                        "title": mask_for(principal, i.title),
                        "content": mask_for(principal, i.content),
                        "reply": mask_for(principal, i.reply),
                    }
                )
                for i in self.items
            ]
            update["timeline"] = [e.masked_for(principal) for e in self.timeline]
        return self.model_copy(update=update)


class TicketRead(TicketSummary):
    """One ticket with its items and timeline."""

    items: list[TicketItemRead]
    timeline: list[TimelineRead]
    # 可能是同一事件: open tickets of the department sharing a place and a subject term (tickets/related.py).
    related: list[RelatedTicket] = Field(default_factory=list)

    @classmethod
    def full(
        cls, ticket: Ticket, principal: Principal, now: datetime, texts: dict[str, Any] | None = None
    ) -> TicketRead:
        """The detail view of ``ticket``; ``texts`` maps item ids to stored items for their content."""
        texts = texts or {}
        items = []
        for linked in ticket.items:
            view = TicketItemRead.model_validate(linked, from_attributes=True)
            stored = texts.get(linked.item_id)
            if stored is not None:
                view = view.model_copy(
                    update={
                        "external_id": stored.external_id,
                        "content": stored.content,
                        "reply": stored.reply,
                        "replied_at": stored.replied_at,
                    }
                )
            items.append(view)
        return cls.of(
            ticket,
            principal,
            now,
            items=items,
            timeline=[TimelineRead.model_validate(e, from_attributes=True) for e in ticket.timeline],
        )


class TicketPage(BaseModel):
    results: list[TicketSummary]
    total: int


class ActionRequest(BaseModel):
    """The body of POST /api/v1/tickets/{id}/actions."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    note: str | None = Field(default=None, max_length=5000)
    department: str | None = Field(default=None, max_length=100)
    response_url: str | None = Field(default=None, max_length=2000)
    response_type: ResponseType | None = Field(
        default=None,
        description="回应方式：online 网上公开（须填 response_url）、phone 电话、written 书面、in_person 当面、"
        "other 其他（后四种须在 note 中写明回应情况）；省略即 online",
    )
    until: InputDateTime | None = None
    version: int | None = Field(default=None, ge=1)
    result: str | None = Field(default=None, max_length=5000)


class DepartmentStats(BaseModel):
    department: str
    total: int
    by_status: dict[str, int]
    escalated: int
    overdue: int
    acknowledge_on_time_rate: float | None
    handle_on_time_rate: float | None
    respond_on_time_rate: float | None
    acknowledge_avg_hours: float | None
    handle_avg_hours: float | None
    respond_avg_hours: float | None
    avg_discover_hours: float | None = Field(description="average hours from publication to discovery")


class StatsPage(BaseModel):
    results: list[DepartmentStats]
    total: int
