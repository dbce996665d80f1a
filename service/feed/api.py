"""The alert feed: paged list, Server-Sent Events stream, and officer triage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from service.api_fields import ROW_ID_MAX, LocalDateTime, RowId
from service.audit.request import record_reveals
from service.audit.service import record
from service.auth.deps import CurrentUser, client_address, require_roles
from service.auth.event_stream import Event, Found, resume_pair, session_stream
from service.deps import CtxDep, SessionDep
from service.feed.models import Alert
from service.feed.service import AlertFilter, AlertNotFound, list_alerts, set_state
from service.ledger import related
from service.masking import collect_reveals, mask_for
from service.principal import Principal
from service.vocabulary import AlertState, Channel, Severity

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AlertRead(BaseModel):
    id: int
    item_id: str
    department: str
    rule_ids: list[str]
    severity: str
    created_at: LocalDateTime
    title: str
    snippets: list[dict[str, Any]]
    source: str
    channel: str
    url: str | None
    published_at: LocalDateTime | None
    ticket_id: int | None
    state: str
    push: str


class AlertList(BaseModel):
    results: list[AlertRead]
    total: int


def _read(alert: Alert, principal: Principal) -> AlertRead:
    return mask_for(principal, AlertRead.model_validate(alert, from_attributes=True))


@router.get("", response_model=AlertList)
def alert_feed(
    principal: CurrentUser,
    session: SessionDep,
    after: int | None = Query(None, ge=0, le=ROW_ID_MAX, description="只返回 ID 大于此值的预警（按 ID 升序）"),
    channel: Channel | None = None,
    severity: Severity | None = None,
    department: str | None = None,
    source: str | None = None,
    state: AlertState | None = None,
    page: int = Query(1, ge=1, le=10_000),
    size: int = Query(50, ge=1, le=200),
) -> AlertList:
    flt = AlertFilter(
        after=after,
        channel=channel,
        severity=severity,
        department=department,
        source=source,
        state=state,
        page=page,
        size=size,
    )
    rows, total = list_alerts(session, principal, flt)
    return AlertList(results=[_read(a, principal) for a in rows], total=total)


@router.get("/stream", response_class=StreamingResponse)
async def alert_stream(
    request: Request,
    principal: CurrentUser,
    ctx: CtxDep,
    after: int | None = Query(None, ge=0, le=ROW_ID_MAX),
) -> StreamingResponse:
    """SSE: every new alert the caller may see; resumable with Last-Event-ID (or ``after``)."""
    last, last_related = resume_pair(request, after)
    if last is None:
        with ctx.db.session() as session:
            newest, _ = list_alerts(session, principal, AlertFilter(size=1))
        last = newest[0].id if newest else 0
    # 可能是同一事件 found while the stream is open is pushed too (event "related"). Every event's id is
    # "alert:suggestion", the two resume points, so a reconnecting browser misses neither kind.
    if last_related is None:
        with ctx.db.session() as session:
            last_related = related.newest_suggestion(session)

    def fetch(after_id: int) -> Found:
        nonlocal last_related
        alerts = _fetch_after(ctx, principal, after_id, request)
        events: list[Event] = [(f"{a.id}:{last_related}", "alert", a.model_dump(mode="json")) for a in alerts]
        sent = max((a.id for a in alerts), default=after_id)
        for suggestion in _related_after(ctx, principal, last_related or 0):
            last_related = suggestion["id"]
            events.append((f"{sent}:{last_related}", "related", suggestion))
        return events, sent

    return session_stream(request, ctx, last, fetch, ctx.settings.alerts.stream_poll_seconds)


def _related_after(ctx: Any, principal: Principal, last: int) -> list[dict[str, Any]]:
    with ctx.db.session() as session:
        found = related.suggestions_after(session, principal, last)
    return [s | {"reason": mask_for(principal, s["reason"])} for s in found]


def _fetch_after(ctx: Any, principal: Principal, last: int, request: Request) -> list[AlertRead]:

    with ctx.db.session() as session:
        collect_reveals()  # this poll's own collection: what it sends an admin unmasked is audited with it
        rows, _ = list_alerts(session, principal, AlertFilter(after=last, size=100))
        alerts = [_read(a, principal) for a in rows]
        record_reveals(session, request, principal)
        return alerts


class StateChange(BaseModel):
    state: AlertState


@router.post("/{alert_id}/state", response_model=AlertRead)
def change_alert_state(
    alert_id: RowId,
    body: StateChange,
    request: Request,
    session: SessionDep,
    principal: Principal = Depends(require_roles("officer", "admin")),
) -> AlertRead:
    """Acknowledge an alert or mark it as noise (kept and counted, not pushed)."""
    try:
        alert = set_state(session, principal, alert_id, body.state)
    except AlertNotFound as exc:
        raise HTTPException(404, "预警不存在") from exc
    record(
        session,
        event="alert.state",
        principal_or_username=principal,
        result="success",
        address=client_address(request),
        detail={"alert_id": alert_id, "state": body.state},
    )
    return _read(alert, principal)
