"""Who is looking at a page: the session cookie set by POST /api/v1/auth/login, checked by service.auth."""

from __future__ import annotations

from fastapi import Request

from service.auth.deps import SESSION_COOKIE, client_address
from service.auth.service import resolve
from service.principal import Principal


def principal_of(request: Request) -> Principal | None:
    """The logged-in user of this request, or None (no cookie, unknown, revoked or timed-out session)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    ctx = request.app.state.ctx
    # The session commits: opening a page restarts the idle clock, as any API call does.
    with ctx.db.session() as session:
        resolved = resolve(session, token, address=client_address(request), policy=ctx.settings.security)
    return resolved.principal if resolved is not None else None
