"""Audit records of one HTTP request, written in that request's own database session.

A request is one unit of work: its audit record commits or rolls back with the change or read it records,
and no second session ever waits for a write lock the request itself holds (on SQLite that wait stalled the
answer for the whole busy timeout and then lost the record).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from loguru import logger
from sqlalchemy.orm import Session

from service.audit.service import Result, record
from service.masking import take_reveals
from service.principal import Principal

REVEAL_EVENT = "personal_data.reveal"


def client_address(request: Request) -> str | None:
    """The caller's address as the server sees it (uvicorn applies proxy headers from trusted proxies only)."""
    return request.client.host if request.client else None


def request_session(request: Request) -> Session | None:
    """The session of this request's unit of work (set by the SessionDep dependency), if it has one."""
    return getattr(request.state, "db_session", None)


def record_refusal(
    request: Request,
    *,
    event: str,
    who: Principal | str | None,
    result: Result,
    detail: dict[str, Any],
) -> None:
    """Audit a refused request: whatever it had started is rolled back, the record committed in its session.

    Called right before the refusal is raised. Never raises: an audit failure must not turn a 403 into a
    500, so it is logged as an error instead.
    """
    session = request_session(request)
    try:
        if session is None:
            # No unit of work open in this request, so there is no lock of its own to wait on.
            with request.app.state.ctx.db.session() as own:
                record(
                    own,
                    event=event,
                    principal_or_username=who,
                    result=result,
                    address=client_address(request),
                    detail=detail,
                )
            return
        session.rollback()
        record(
            session,
            event=event,
            principal_or_username=who,
            result=result,
            address=client_address(request),
            detail=detail,
        )
        session.commit()
    except Exception as exc:
        logger.error("无法记录审计（{}，{} {}）：{}", event, request.method, request.url.path, exc)
        if session is not None:
            session.rollback()


def record_reveals(
    session: Session, request: Request, principal: Principal | None = None, kinds: list[str] | None = None
) -> bool:
    """Write one reveal record for what this request has shown unmasked, in ``session``'s transaction.

    ``kinds`` defaults to what service.masking collected for the request so far. True when something was
    revealed. The caller commits: the record and the read it records are one unit.
    """
    kinds = take_reveals() if kinds is None else kinds
    if not kinds:
        return False
    who = principal if principal is not None else getattr(request.state, "principal", None)
    record(
        session,
        event=REVEAL_EVENT,
        principal_or_username=who,
        result="success",
        address=client_address(request),
        detail={"method": request.method, "path": request.url.path, "objects": kinds},
    )
    return True
