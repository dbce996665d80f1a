"""Ledger endpoints: list and read tickets, act on them, statistics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from service import clock
from service.api_fields import ROW_ID_MAX, RowId, check_range, date_or_time
from service.audit.request import record_refusal
from service.audit.service import Result as AuditResult
from service.audit.service import record
from service.auth.deps import CurrentUser, client_address, department_filter
from service.auth.event_stream import Event, Found, resume_point, session_stream
from service.clock import SHANGHAI
from service.deps import CtxDep, SessionDep
from service.ledger import actions, changes, merging, regions, related, service, statistics
from service.ledger.alerts import TicketAlerts
from service.ledger.config import ledger_config
from service.ledger.errors import InvalidInput, StaleVersion, TicketNotFound
from service.ledger.schemas import (
    ActionRequest,
    StatsPage,
    TicketPage,
    TicketRead,
    TicketSummary,
)
from service.ledger.transitions import RoleNotAllowedError, TransitionNotAllowed
from service.masking import mask_for
from service.principal import Principal
from service.store.base import StoreUnavailable
from service.vocabulary import Severity

router = APIRouter(prefix="/api/v1", tags=["tickets"])


def _audit(
    request: Request, principal: Principal, result: AuditResult, detail: dict[str, Any], session: Session | None = None
) -> None:
    """A ticket action's record: with the change in ``session``, or for a refusal in the request's own session."""
    if session is None:
        record_refusal(request, event="ticket_action", who=principal, result=result, detail=detail)
        return
    record(
        session,
        event="ticket_action",
        principal_or_username=principal,
        result=result,
        address=client_address(request),
        detail=detail,
    )


@router.get("/tickets", response_model=TicketPage)
def list_tickets(
    principal: CurrentUser,
    session: SessionDep,
    status: str | None = Query(None, description="状态，可用逗号分隔多个"),
    department: str | None = None,
    overdue: bool | None = Query(None, description="true: 有环节超期（含超期后完成）"),
    date_from: str | None = Query(None, alias="from", description="发现时间起 (日期或 ISO 8601)"),
    date_to: str | None = Query(None, alias="to", description="发现时间止 (日期含当天)"),
    page: int = Query(1, ge=1),
    size: int = Query(20, ge=1, le=200),
) -> TicketPage:
    """Tickets the caller may see (department users: their own department only)."""
    department_filter(principal)  # auditors and unknown roles: 403
    check_range(date_from, date_to)
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
    try:
        tickets, total = service.list_tickets(
            session,
            principal,
            status=statuses,
            department=department,
            overdue_only=overdue,
            date_from=date_or_time("from", date_from),
            date_to=date_or_time("to", date_to),
            page=page,
            size=size,
        )
    except InvalidInput as exc:
        raise HTTPException(422, {"message": str(exc), "field": exc.field}) from exc
    now = clock.now()
    results = [TicketSummary.of(t, principal, now).masked_for(principal) for t in tickets]
    return TicketPage(results=results, total=total)


@router.get("/tickets/stream", response_class=StreamingResponse)
async def ticket_stream(
    request: Request,
    principal: CurrentUser,
    ctx: CtxDep,
    after: int | None = Query(None, ge=0, le=ROW_ID_MAX, description="从此变更 ID 之后开始（默认：从现在开始）"),
) -> StreamingResponse:
    """SSE: every change of a ticket the caller may see (created, acted on, reassigned, merged, ...).

    One ``ticket`` event per change: ``{"ticket_id", "action", "at"}``; a list reloads what changed.
    Department users get their own department's changes only. Resumable with Last-Event-ID.
    """
    department_filter(principal)  # auditors: 403, as for the list
    last = resume_point(request, after)
    if last is None:
        with ctx.db.session() as session:
            last = changes.last_change_id(session)

    def fetch(after_id: int) -> Found:
        with ctx.db.session() as session:
            entries, scanned = changes.changes_after(session, principal, after_id)
            events: list[Event] = [
                (e.id, "ticket", {"ticket_id": e.ticket_id, "action": e.action, "at": _local(e.at)}) for e in entries
            ]
        return events, scanned

    return session_stream(request, ctx, last, fetch, ctx.settings.alerts.stream_poll_seconds)


def _local(at: datetime) -> str:
    return at.astimezone(SHANGHAI).isoformat()


def _item_texts(ctx: Any, ticket: Any) -> dict[str, Any]:
    """The linked items as stored, for their text; empty when the store is down (the ticket still shows)."""
    try:
        return {i.id: i for i in ctx.store.get_many([linked.item_id for linked in ticket.items])}
    except StoreUnavailable:
        return {}


@router.get("/tickets/{ticket_id}", response_model=TicketRead)
def read_ticket(ticket_id: RowId, principal: CurrentUser, session: SessionDep, ctx: CtxDep) -> TicketRead:
    """One ticket with items (and their text), deadlines, timeline, time left and the caller's allowed actions."""
    try:
        ticket = service.get(session, ticket_id, principal)
    except TicketNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    texts = _item_texts(ctx, ticket)
    view = TicketRead.full(ticket, principal, clock.now(), texts).masked_for(principal)
    # Computed when its items were matched (and pushed then); only whether they still stand is checked here.
    suggestions = related.stored(session, ticket)
    masked = [r.model_copy(update={"title": mask_for(principal, r.title)}) for r in suggestions]
    return view.model_copy(update={"related": masked})


@contextmanager
def _ledger_errors(request: Request, principal: Principal, detail: dict[str, Any]) -> Iterator[None]:
    """Map the ledger's refusals to HTTP answers (404, 403, 422, 409), each one audited."""
    try:
        yield
    except TicketNotFound as exc:
        _audit(request, principal, "denied", {**detail, "reason": "not_found"})
        raise HTTPException(404, str(exc)) from exc
    except RoleNotAllowedError as exc:
        _audit(request, principal, "denied", {**detail, "reason": "role"})
        raise HTTPException(403, str(exc)) from exc
    except InvalidInput as exc:
        _audit(request, principal, "failure", {**detail, "reason": str(exc)})
        raise HTTPException(422, {"message": str(exc), "field": exc.field}) from exc
    except StaleVersion as exc:
        _audit(request, principal, "failure", {**detail, "reason": "stale_version", "current": exc.current})
        raise HTTPException(409, {"message": str(exc), "current_version": exc.current}) from exc
    except TransitionNotAllowed as exc:
        _audit(request, principal, "failure", {**detail, "reason": exc.reason, "status": exc.status})
        raise HTTPException(409, {"message": str(exc), "status": exc.status}) from exc


@router.post("/tickets/{ticket_id}/actions", response_model=TicketRead)
def ticket_action(
    ticket_id: RowId, body: ActionRequest, request: Request, principal: CurrentUser, session: SessionDep, ctx: CtxDep
) -> TicketRead:
    """Do one action; 409 on a stale version or a move not allowed now, 403 for the wrong role."""
    detail: dict[str, Any] = {"ticket_id": ticket_id, "action": body.action, "version": body.version}
    with _ledger_errors(request, principal, detail):
        ticket = actions.act(
            session,
            ticket_id,
            principal,
            body.action,
            note=body.note,
            department=body.department,
            response_url=body.response_url,
            until=body.until,
            version=body.version,
            result=body.result,
            config=ledger_config(ctx.settings),
            response_type=body.response_type,
        )
    _audit(
        request,
        principal,
        "success",
        {**detail, "to_status": ticket.status, "new_version": ticket.version},
        session=session,
    )
    texts = _item_texts(ctx, ticket)
    return TicketRead.full(ticket, principal, clock.now(), texts).masked_for(principal)


class SeverityChange(BaseModel):
    severity: Severity
    version: int | None = None
    note: str | None = Field(None, max_length=2000)


@router.put("/tickets/{ticket_id}/severity", response_model=TicketRead)
def change_ticket_severity(
    ticket_id: RowId, body: SeverityChange, request: Request, principal: CurrentUser, session: SessionDep, ctx: CtxDep
) -> TicketRead:
    """Re-grade a ticket (officers, admins): stages not yet met get the new severity's deadlines."""
    detail: dict[str, Any] = {"ticket_id": ticket_id, "action": "change_severity", "severity": body.severity}
    with _ledger_errors(request, principal, detail):
        ticket = actions.act(
            session,
            ticket_id,
            principal,
            "change_severity",
            body.note,
            version=body.version,
            config=ledger_config(ctx.settings),
            severity=body.severity,
        )
    _audit(request, principal, "success", {**detail, "new_version": ticket.version}, session=session)
    texts = _item_texts(ctx, ticket)
    return TicketRead.full(ticket, principal, clock.now(), texts).masked_for(principal)


class MergeSource(BaseModel):
    id: RowId
    version: int | None = None


class MergeRequest(BaseModel):
    """并单: the tickets (with the versions the officer saw) merged into the ticket of the path."""

    sources: list[MergeSource] = Field(min_length=1, max_length=50)
    version: int | None = None
    note: str | None = Field(None, max_length=2000)


class SplitRequest(BaseModel):
    """拆单: the item moved out of the ticket of the path into a new ticket."""

    item_id: str = Field(min_length=1, max_length=64)
    version: int | None = None
    note: str | None = Field(None, max_length=2000)


class SplitAnswer(BaseModel):
    ticket: TicketRead
    new_ticket: TicketRead


@router.post("/tickets/{ticket_id}/merge", response_model=TicketRead)
def merge_tickets(
    ticket_id: RowId, body: MergeRequest, request: Request, principal: CurrentUser, session: SessionDep, ctx: CtxDep
) -> TicketRead:
    """并单 (officers, admins): one department's tickets into this one; 409 when any version is stale."""
    detail: dict[str, Any] = {
        "ticket_id": ticket_id,
        "action": "merge",
        "version": body.version,
        "sources": [{"id": s.id, "version": s.version} for s in body.sources],
    }
    with _ledger_errors(request, principal, detail):
        ticket = merging.merge(
            session,
            ticket_id,
            [(s.id, s.version) for s in body.sources],
            principal,
            version=body.version,
            note=body.note,
        )
    _audit(request, principal, "success", {**detail, "new_version": ticket.version}, session=session)
    texts = _item_texts(ctx, ticket)
    return TicketRead.full(ticket, principal, clock.now(), texts).masked_for(principal)


def _ticket_alerts(request: Request) -> TicketAlerts:
    """The alert feed's interface, handed over by the composition root (the ledger does not import the feed)."""
    alerts: TicketAlerts = request.app.state.ticket_alerts
    return alerts


@router.post("/tickets/{ticket_id}/split", response_model=SplitAnswer)
def split_ticket(
    ticket_id: RowId, body: SplitRequest, request: Request, principal: CurrentUser, session: SessionDep, ctx: CtxDep
) -> SplitAnswer:
    """拆单 (officers, admins): the item becomes a new ticket whose deadlines count from its own discovery."""
    detail: dict[str, Any] = {"ticket_id": ticket_id, "action": "split", "version": body.version, "item": body.item_id}
    with _ledger_errors(request, principal, detail):
        try:
            ticket, new = merging.split(
                session,
                ticket_id,
                body.item_id,
                principal,
                ctx.store,
                alerts=_ticket_alerts(request),
                version=body.version,
                note=body.note,
                config=ledger_config(ctx.settings),
            )
        except StoreUnavailable as exc:
            logger.warning("条目存储不可用：{}", exc)
            raise HTTPException(503, {"message": exc.message}) from exc
    _audit(request, principal, "success", {**detail, "new_ticket": new.id}, session=session)
    now = clock.now()
    return SplitAnswer(
        ticket=TicketRead.full(ticket, principal, now, _item_texts(ctx, ticket)).masked_for(principal),
        new_ticket=TicketRead.full(new, principal, now, _item_texts(ctx, new)).masked_for(principal),
    )


class RegionRow(BaseModel):
    region: str
    count: int
    open: int


class RegionPage(BaseModel):
    results: list[RegionRow]
    total: int


@router.get("/stats/regions", response_model=RegionPage)
def ticket_regions(
    principal: CurrentUser,
    session: SessionDep,
    ctx: CtxDep,
    date_from: str | None = Query(None, alias="from", description="发现时间起 (日期或 ISO 8601)"),
    date_to: str | None = Query(None, alias="to", description="发现时间止 (日期含当天)"),
) -> RegionPage:
    """地域分布: the caller's tickets discovered in the range, per region named by their first item."""
    department_filter(principal)
    check_range(date_from, date_to)
    rows = regions.region_counts(
        session, ctx.store, principal, date_or_time("from", date_from), date_or_time("to", date_to)
    )
    return RegionPage(results=[RegionRow(**r) for r in rows], total=len(rows))


@router.get("/stats", response_model=StatsPage)
def ticket_stats(
    principal: CurrentUser,
    session: SessionDep,
    date_from: str | None = Query(None, alias="from", description="发现时间起 (日期或 ISO 8601)"),
    date_to: str | None = Query(None, alias="to", description="发现时间止 (日期含当天)"),
) -> StatsPage:
    """Per department: counts, on-time rates per stage, average hours, time from publication to discovery."""
    department_filter(principal)
    check_range(date_from, date_to)
    rows = statistics.stats(
        session, principal, date_from=date_or_time("from", date_from), date_to=date_or_time("to", date_to)
    )
    # The rows are plain dicts from SQL aggregation; validation makes them DepartmentStats.
    return StatsPage.model_validate({"results": rows, "total": len(rows)})
