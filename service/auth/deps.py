"""Who is calling and what they may do: the one place authorisation is decided.

Routers declare ``principal: CurrentUser`` (any signed-in user) or
``principal: Annotated[Principal, Depends(require_roles("officer", "admin"))]``, list with
``department_filter(principal)`` and load single objects through ``ensure_department_visible``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from service.audit.request import client_address as client_address  # routers take the address from here
from service.audit.request import record_refusal
from service.auth.middleware import SAFE_METHODS, limiter
from service.auth.service import check_csrf, resolve
from service.deps import SessionDep
from service.principal import Principal
from service.vocabulary import ROLES, Role

SESSION_COOKIE = "yuqing_session"
CSRF_COOKIE = "yuqing_csrf"
CSRF_HEADER = "X-CSRF-Token"
_UNAUTHORISED = {"WWW-Authenticate": "Bearer"}
# Signing in and out stays open to every role; the scopes below hold for everything else.
_AUTH_PREFIX = "/api/v1/auth/"
_AUDIT_PATH = "/api/v1/audit"


def audit_denial(request: Request, who: Principal | str | None, detail: dict[str, Any]) -> None:
    """Record a refused request in the request's own session (its other work is rolled back)."""
    record_refusal(
        request,
        event="authz_denied",
        who=who,
        result="denied",
        detail={"method": request.method, "path": request.url.path, **detail},
    )


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_principal(request: Request, session: SessionDep) -> Principal:
    """The signed-in caller from ``Authorization: Bearer`` or the console cookie; 401 otherwise."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = _bearer(request)
    by_cookie = token is None
    if by_cookie:
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(401, "未登录 (not authenticated)", headers=_UNAUTHORISED)
    policy = request.app.state.ctx.settings.security
    resolved = resolve(session, token, address=client_address(request), policy=policy)
    # The idle clock's touch is committed at once: a long request must not hold the write lock for it.
    session.commit()
    if resolved is None:
        raise HTTPException(401, "登录已失效，请重新登录 (session expired or revoked)", headers=_UNAUTHORISED)
    if (
        by_cookie
        and request.method not in SAFE_METHODS
        and not check_csrf(resolved, request.headers.get(CSRF_HEADER), request.cookies.get(CSRF_COOKIE))
    ):
        audit_denial(request, resolved.principal, {"reason": "csrf"})
        raise HTTPException(403, "CSRF 校验失败 (missing or wrong X-CSRF-Token)")
    if resolved.principal.must_change_password and not request.url.path.startswith(_AUTH_PREFIX):
        raise HTTPException(403, {"message": "请先修改密码（管理员重置了您的密码）", "reason": "must_change_password"})
    if _out_of_scope(request, resolved.principal):
        audit_denial(request, resolved.principal, {"reason": "role_scope"})
        raise HTTPException(403, "无权执行此操作 (forbidden for your role)")
    request.state.principal = resolved.principal
    request.state.session_id = resolved.session_id
    return resolved.principal


def _out_of_scope(request: Request, principal: Principal) -> bool:
    """Whether the role may not make this request at all, whatever the route itself declares.

    Decided here rather than per router so a new endpoint cannot forget it: auditors read the audit
    log only (separation of duties) and leaders read everything but change nothing.
    """
    path = request.url.path
    if path.startswith(_AUTH_PREFIX):
        return False
    if principal.role == "auditor":
        return not (path == _AUDIT_PATH or path.startswith(_AUDIT_PATH + "/"))
    if principal.role == "leader":
        return request.method not in SAFE_METHODS
    return False


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only ``roles``; anyone else gets 403 and an audit record."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"require_roles: unknown roles {unknown} (known: {ROLES})")

    def dependency(request: Request, principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            audit_denial(request, principal, {"reason": "role", "required": list(roles)})
            raise HTTPException(403, "无权执行此操作 (forbidden for your role)")
        return principal

    dependency.__name__ = f"require_roles_{'_'.join(roles)}"
    return dependency


def department_filter(principal: Principal) -> str | None:
    """The department a listing must be restricted to; None when the caller sees every department."""
    if principal.sees_everything:
        return None
    if principal.role == "department" and principal.department:
        return principal.department
    raise HTTPException(403, "无权查看 (forbidden for your role)")


def ensure_department_visible(principal: Principal, department: str | None, request: Request | None = None) -> None:
    """404 when the object belongs to a department the caller may not see (its existence stays hidden)."""
    if principal.may_see_department(department):
        return
    if request is not None:
        audit_denial(request, principal, {"reason": "department", "department": department})
    raise HTTPException(404, "不存在 (not found)")


def rate_limit(name: str) -> Callable[..., None]:
    """A dependency spending one token of the app's ``name`` limiter per signed-in user; 429 when empty."""

    def dependency(request: Request, principal: CurrentUser) -> None:
        bucket = limiter(request.app, name)
        if bucket is None:
            return
        wait = bucket.take(f"{principal.user_id}")
        if wait > 0:
            raise HTTPException(429, "请求过于频繁，请稍后再试", headers={"Retry-After": str(int(wait) + 1)})

    dependency.__name__ = f"rate_limit_{name}"
    return dependency
