"""Auditing reveals: every answer that showed an admin unmasked personal data leaves an audit record.

The record is written by the request's own session together with the read (service.deps.get_session);
this middleware only opens the per-request collection, and records what was shown outside any session.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from loguru import logger
from starlette.types import ASGIApp, Receive, Scope, Send

from service.audit.request import record_reveals
from service.masking import collect_reveals


class RevealAudit:
    """Collect reveals per request; leftovers (shown by a handler without a session) get a record afterwards."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        box = collect_reveals()
        await self.app(scope, receive, send)
        if box:
            # The request's own session has ended by now (it closes before the answer is sent), so this
            # second session waits on nobody's lock.
            await asyncio.to_thread(_record_leftover, Request(scope), sorted(set(box)))
            box.clear()


def _record_leftover(request: Request, kinds: list[str]) -> None:

    try:
        with request.app.state.ctx.db.session() as session:
            record_reveals(session, request, kinds=kinds)
    except Exception as exc:  # the answer is already sent; the failure must be visible in the log
        logger.error("无法记录 {} 上的个人信息查看审计：{}", request.url.path, exc)


def install_reveal_audit(app: FastAPI) -> None:
    """Open a reveal collection for every request (see service.deps.get_session for the record itself)."""
    app.add_middleware(RevealAudit)
