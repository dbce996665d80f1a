"""Sign-in and sign-out: bearer tokens for API clients, an HttpOnly cookie plus CSRF token for the console.

Admins add their TOTP code as the form field ``totp`` (``/auth/token``) or the JSON/form key ``totp``
(``/auth/login``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from service.audit.service import record
from service.auth.deps import CSRF_COOKIE, SESSION_COOKIE, CurrentUser, client_address
from service.auth.middleware import limiter
from service.auth.service import LOGIN_FAILED, Issued, LoginFailed, login, logout
from service.deps import SessionDep
from service.users.home import home_of
from service.users.service import UserError, change_own_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, max_length=16)


class Me(BaseModel):
    username: str
    role: str
    department: str | None
    sees_personal_data: bool
    must_change_password: bool = False
    home: str = "/"


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024, description="当前密码")
    new_password: str = Field(min_length=1, max_length=1024, description="新密码")


class LoginResponse(Me):
    csrf_token: str


def _me(issued_or_principal: Any) -> dict[str, Any]:
    p = getattr(issued_or_principal, "principal", issued_or_principal)
    return {
        "username": p.username,
        "role": p.role,
        "department": p.department,
        "sees_personal_data": p.sees_personal_data,
        "must_change_password": p.must_change_password,
        "home": home_of(p),
    }


def _authenticate(request: Request, creds: LoginRequest) -> Issued:
    """Rate-limit, check and audit one sign-in; 401 with one message for every kind of refusal."""
    address = client_address(request)
    bucket = limiter(request.app, "login")
    if bucket is not None:
        wait = bucket.take(f"{address}|{creds.username}")
        if wait > 0:
            raise HTTPException(429, "登录尝试过于频繁，请稍后再试", headers={"Retry-After": str(int(wait) + 1)})
    ctx = request.app.state.ctx
    issued: Issued | None = None
    hint: str | None = None
    # Its own transaction, committed even when refused: the failure count and audit record must stay.
    with ctx.db.session() as session:
        try:
            issued = login(
                session,
                username=creds.username,
                password=creds.password,
                totp=creds.totp,
                address=address,
                policy=ctx.settings.security,
            )
        except LoginFailed as exc:
            hint = exc.hint
    if issued is None:
        raise HTTPException(401, hint or LOGIN_FAILED, headers={"WWW-Authenticate": "Bearer"})
    return issued


@router.post("/token", response_model=TokenResponse)
def token(
    request: Request,
    username: str = Form(..., max_length=64),
    password: str = Form(..., max_length=1024),
    totp: str | None = Form(None, max_length=16, description="管理员的动态口令 (TOTP)"),
    grant_type: str | None = Form(None, pattern="^password$"),
) -> TokenResponse:
    """OAuth2 password grant; admins add their TOTP code in the form field ``totp``."""
    issued = _authenticate(request, LoginRequest(username=username, password=password, totp=totp))
    return TokenResponse(access_token=issued.token)


def _secure(request: Request) -> bool:
    settings = request.app.state.ctx.settings
    if settings.security.cookie_secure is not None:
        return settings.security.cookie_secure
    public = settings.server.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


@router.post("/login", response_model=LoginResponse)
async def console_login(request: Request, response: Response) -> dict[str, Any]:
    """Console sign-in (JSON or form): sets the HttpOnly session cookie and the CSRF cookie."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            raw: Any = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(422, "请求体不是合法的 JSON") from None
    else:
        # Text fields only: a file part is no credential (and an UploadFile in the 422 would not serialise).
        raw = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    try:
        creds = LoginRequest.model_validate(raw)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from None
    issued = await run_in_threadpool(_authenticate, request, creds)
    settings = request.app.state.ctx.settings
    common: dict[str, Any] = {
        "max_age": settings.security.absolute_timeout_hours * 3600,
        "secure": _secure(request),
        "samesite": "lax",
        "path": "/",
    }
    response.set_cookie(SESSION_COOKIE, issued.token, httponly=True, **common)
    # Readable by the console's script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(CSRF_COOKIE, issued.csrf_token, httponly=False, **common)
    return {**_me(issued), "csrf_token": issued.csrf_token}


@router.post("/logout", status_code=204)
def sign_out(request: Request, response: Response, principal: CurrentUser, session: SessionDep) -> Response:
    """Revoke the caller's session on the server and clear the console cookies."""
    logout(session, request.state.session_id)
    record(session, event="logout", principal_or_username=principal, result="success")
    session.commit()  # revoked before the answer leaves, not after
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/password", status_code=204)
def change_password(body: PasswordChange, principal: CurrentUser, session: SessionDep, request: Request) -> Response:
    """The caller chooses a new password (required after an administrator's reset)."""
    try:
        change_own_password(
            session,
            principal,
            current=body.current_password,
            new=body.new_password,
            policy=request.app.state.ctx.settings.security,
        )
    except UserError as exc:
        raise HTTPException(422, {"message": str(exc)}) from None
    session.commit()
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(principal: CurrentUser) -> dict[str, Any]:
    """Who the caller is signed in as."""
    return _me(principal)
