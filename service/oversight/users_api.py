"""/api/v1/users: account administration, for the admin role only; every change is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from service.auth.deps import require_roles
from service.deps import SessionDep, SettingsDep
from service.oversight import accounts
from service.principal import Principal
from service.users.qr import qr_svg_data_uri
from service.users.service import UserError, UserNotFound

router = APIRouter(prefix="/api/v1/users", tags=["users"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]


class UserRead(BaseModel):
    username: str
    role: str
    role_name: str
    department: str | None
    active: bool
    locked: bool
    locked_until: datetime | None
    must_change_password: bool
    has_totp: bool
    created_at: datetime
    password_changed_at: datetime


class UserList(BaseModel):
    results: list[UserRead]
    total: int


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64, description="用户名")
    role: str = Field(description="admin | officer | department | leader | auditor")
    department: str | None = Field(default=None, max_length=64, description="责任单位 ID（仅 department 角色）")
    password: str | None = Field(
        default=None, max_length=1024, description="初始密码；省略则生成临时密码，首次登录须修改"
    )


class UserUpdate(BaseModel):
    role: str | None = Field(default=None, description="新角色")
    department: str | None = Field(default=None, max_length=64, description="新部门 ID（仅 department 角色）")
    active: bool | None = Field(default=None, description="false 停用，true 启用")


class PasswordReset(BaseModel):
    password: str | None = Field(default=None, max_length=1024, description="临时密码；省略则自动生成")


class UserChanged(BaseModel):
    """The account after the change, and what is shown once: a temporary password, a TOTP enrolment."""

    user: UserRead
    temporary_password: str | None = None
    totp_uri: str | None = None
    totp_qr: str | None = Field(default=None, description="TOTP 绑定二维码 (data:image/svg+xml URI，本地生成)")


def _answer(user: Any, secrets: accounts.Secrets | None = None) -> UserChanged:
    secrets = secrets or accounts.Secrets()
    return UserChanged(
        user=UserRead(**accounts.describe(user)),
        temporary_password=secrets.password,
        totp_uri=secrets.totp_uri,
        totp_qr=qr_svg_data_uri(secrets.totp_uri) if secrets.totp_uri else None,
    )


def _refuse(exc: Exception) -> HTTPException:
    if isinstance(exc, UserNotFound):
        return HTTPException(404, str(exc))
    return HTTPException(422, {"message": str(exc)})


@router.get("", response_model=UserList)
def list_users(principal: Admin, session: SessionDep) -> UserList:
    """Every account with its state (active, locked, must change password)."""
    rows = [UserRead(**accounts.describe(u)) for u in accounts.list_users(session)]
    return UserList(results=rows, total=len(rows))


@router.post("", response_model=UserChanged, status_code=201)
def create(body: UserCreate, principal: Admin, session: SessionDep, settings: SettingsDep) -> UserChanged:
    """Add an account; an admin account answers with its TOTP enrolment (URI and QR code), shown once."""
    try:
        user, secrets = accounts.add_user(
            session,
            principal,
            username=body.username,
            role=body.role,
            department=body.department or None,
            password=body.password,
            policy=settings.security,
            config_dir=settings.config_dir,
        )
    except (UserError, UserNotFound) as exc:
        raise _refuse(exc) from None
    session.commit()
    return _answer(user, secrets)


@router.patch("/{username}", response_model=UserChanged)
def update(
    username: str, body: UserUpdate, principal: Admin, session: SessionDep, settings: SettingsDep
) -> UserChanged:
    """Change role/department (validated against departments.yaml) and/or disable or enable."""
    secrets = accounts.Secrets()
    try:
        if body.role is not None:
            user, secrets = accounts.change_role(
                session,
                principal,
                username,
                role=body.role,
                department=body.department or None,
                config_dir=settings.config_dir,
            )
        if body.active is not None:
            user = accounts.set_active(session, principal, username, body.active)
        if body.role is None and body.active is None:
            raise UserError("没有要修改的内容（role、department 或 active）")
    except (UserError, UserNotFound) as exc:
        raise _refuse(exc) from None
    session.commit()
    return _answer(user, secrets)


@router.post("/{username}/unlock", response_model=UserChanged)
def unlock(username: str, principal: Admin, session: SessionDep) -> UserChanged:
    """Lift a lockout after repeated failed logins."""
    try:
        user = accounts.unlock(session, principal, username)
    except UserNotFound as exc:
        raise _refuse(exc) from None
    session.commit()
    return _answer(user)


@router.post("/{username}/reset-password", response_model=UserChanged)
def reset_password(
    username: str, body: PasswordReset, principal: Admin, session: SessionDep, settings: SettingsDep
) -> UserChanged:
    """Set a temporary password (generated unless given); the user must change it at the next login."""
    try:
        user, secrets = accounts.reset_password(
            session, principal, username, password=body.password, policy=settings.security
        )
    except (UserError, UserNotFound) as exc:
        raise _refuse(exc) from None
    session.commit()
    return _answer(user, secrets)


@router.delete("/{username}", status_code=204)
def remove(username: str, principal: Admin, session: SessionDep) -> None:
    """Delete an account (not one's own, not the last admin); its audit records stay."""
    try:
        accounts.delete_user(session, principal, username)
    except (UserError, UserNotFound) as exc:
        raise _refuse(exc) from None
    session.commit()
