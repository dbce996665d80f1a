"""Auditing reveals: every response that showed an admin unmasked personal data leaves an audit record."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from loguru import logger

from service.masking import collect_reveals


def install_reveal_audit(app: FastAPI) -> None:
    """Wrap every request: reveals noted by service.masking are written to the audit log after the response."""

    @app.middleware("http")
    async def audit_reveals(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        box = collect_reveals()
        response = await call_next(request)
        if box:
            principal = getattr(request.state, "principal", None)
            await asyncio.to_thread(_record, request, principal, sorted(set(box)), response.status_code)
        return response


def _record(request: Request, principal: object, kinds: list[str], status: int) -> None:
    from service.audit.service import record
    from service.auth.deps import client_address

    try:
        with request.app.state.ctx.db.session() as session:
            record(
                session,
                event="personal_data.reveal",
                principal_or_username=principal,  # type: ignore[arg-type]
                result="success",
                address=client_address(request),
                detail={"method": request.method, "path": request.url.path, "objects": kinds, "status": status},
            )
    except Exception as exc:  # the response is already sent; the failure must be visible in the log
        logger.error("could not audit a personal-data reveal on {}: {}", request.url.path, exc)
