"""What an administrator does to accounts: list, create, disable/enable, unlock, reset, change role, delete.

The API and the CLI call these functions, and each writes its own audit record in the caller's
transaction, so a change and its record are kept or lost together. They stand above sign-in
(service.auth): a change that must end the user's sessions asks auth to end them.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import clock
from service.audit.service import record
from service.auth.service import delete_user_sessions, revoke_user_sessions
from service.config_files import ConfigError
from service.principal import Principal
from service.rules.config import current_departments
from service.settings import SecuritySettings
from service.users.models import User
from service.users.service import (
    TOTP_ISSUER,
    UserError,
    create_user,
    existing_user,
    hash_password,
    known_role,
    password_problems,
    validate_role,
)

ROLE_NAMES = {"admin": "管理员", "officer": "舆情专员", "department": "责任单位", "leader": "领导", "auditor": "审计员"}
Actor = Principal | str


@dataclass(frozen=True)
class Secrets:
    """What is shown once after a change: a generated password and/or a new TOTP enrolment URI."""

    password: str | None = None
    totp_uri: str | None = None


def known_departments(config_dir: Path) -> dict[str, str]:
    """Department id -> name from departments.yaml; {} when the file is missing."""
    try:
        return {d.id: d.name for d in current_departments(config_dir).departments}
    except ConfigError as exc:
        raise UserError(f"departments.yaml 有误，无法校验部门：{exc}") from exc


def check_department(role: str, department: str | None, config_dir: Path) -> None:
    """The role/department pair is valid and the department is one departments.yaml defines."""
    validate_role(role, department)
    if role != "department":
        return
    known = known_departments(config_dir)
    if department not in known:
        choices = "、".join(f"{k}（{v}）" for k, v in known.items()) or "departments.yaml 中尚未定义任何部门"
        raise UserError(f"部门 {department!r} 不在 departments.yaml 中，可选：{choices}")


def generate_password(length: int = 14) -> str:
    """A random temporary password meeting every class of the policy (upper, lower, digit, symbol)."""
    alphabet = string.ascii_letters + string.digits + "!#%+-=?@"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.isupper() for c in candidate)
            and any(c.islower() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(not c.isalnum() for c in candidate)
        ):
            return candidate


def is_locked(user: User, at: datetime | None = None) -> bool:
    """Whether the account is inside a lockout period."""
    return user.locked_until is not None and user.locked_until > (at or clock.now())


def describe(user: User) -> dict[str, Any]:
    """The account as the list shows it (no hashes, no secrets)."""
    return {
        "username": user.username,
        "role": user.role,
        "role_name": ROLE_NAMES.get(user.role, user.role),
        "department": user.department,
        "active": bool(user.active),
        "locked": is_locked(user),
        "locked_until": user.locked_until if is_locked(user) else None,
        "must_change_password": bool(user.must_change_password),
        "has_totp": bool(user.totp_secret),
        "created_at": user.created_at,
        "password_changed_at": user.password_changed_at,
    }


def list_users(session: Session) -> list[User]:
    """Every account, by user name."""
    return list(session.execute(select(User).order_by(User.username)).scalars())


def _audit(session: Session, actor: Actor, event: str, username: str, **detail: Any) -> None:
    address = "cli" if isinstance(actor, str) else None
    record(
        session,
        event=event,
        principal_or_username=actor,
        result="success",
        address=address,
        detail={"username": username, **detail},
    )


def _enrol_totp(user: User) -> str:
    """A new TOTP secret for ``user``; the provisioning URI to show once."""
    secret = pyotp.random_base32()
    user.totp_secret = secret
    user.totp_last_step = None
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)


def _self_name(actor: Actor) -> str | None:
    return actor.username if isinstance(actor, Principal) else None


def _active_admins(session: Session, excluding: User) -> int:
    return session.execute(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.active.is_(True), User.id != excluding.id)
    ).scalar_one()


def _keep_one_admin(session: Session, user: User, what: str) -> None:
    if user.role == "admin" and user.active and _active_admins(session, user) == 0:
        raise UserError(f"不能{what}最后一个可用的管理员账号")


def add_user(
    session: Session,
    actor: Actor,
    *,
    username: str,
    role: str,
    department: str | None,
    password: str | None,
    policy: SecuritySettings,
    config_dir: Path,
) -> tuple[User, Secrets]:
    """Create an account; without a password one is generated and must be changed at the first login."""
    check_department(role, department, config_dir)
    generated = password is None
    chosen = generate_password() if password is None else password
    user, uri = create_user(
        session, username=username, password=chosen, role=role, department=department, policy=policy
    )
    user.must_change_password = generated
    shown = Secrets(password=chosen if generated else None, totp_uri=uri)
    _audit(session, actor, "user_add", username, role=role, department=department)
    return user, shown


def set_active(session: Session, actor: Actor, username: str, active: bool) -> User:
    """Disable (sessions end at once) or enable an account."""
    user = existing_user(session, username)
    if not active:
        if username == _self_name(actor):
            raise UserError("不能停用自己的账号")
        _keep_one_admin(session, user, "停用")
        revoke_user_sessions(session, user.id)
    user.active = active
    _audit(session, actor, "user_enable" if active else "user_disable", username)
    return user


def unlock(session: Session, actor: Actor, username: str) -> User:
    """Lift a lockout after failed logins."""
    user = existing_user(session, username)
    user.locked_until = None
    user.failed_logins = 0
    _audit(session, actor, "user_unlock", username)
    return user


def reset_password(
    session: Session, actor: Actor, username: str, *, password: str | None, policy: SecuritySettings
) -> tuple[User, Secrets]:
    """Set a temporary password (given or generated) that must be changed at the next login."""
    user = existing_user(session, username)
    temp = generate_password() if password is None else password
    problems = password_problems(temp, username, policy)
    if problems:
        raise UserError("；".join(problems))
    user.password_hash = hash_password(temp)
    user.password_changed_at = clock.now()
    user.must_change_password = True
    user.locked_until = None
    user.failed_logins = 0
    revoke_user_sessions(session, user.id)
    _audit(session, actor, "user_reset_password", username)
    return user, Secrets(password=temp if password is None else None)


def change_role(
    session: Session, actor: Actor, username: str, *, role: str, department: str | None, config_dir: Path
) -> tuple[User, Secrets]:
    """Change role and department; a new admin gets a TOTP enrolment, a former admin loses the secret."""
    user = existing_user(session, username)
    new_role = known_role(role)
    check_department(role, department, config_dir)
    if user.role == role and (user.department or None) == (department or None):
        return user, Secrets()
    if user.role == "admin" and role != "admin":
        if username == _self_name(actor):
            raise UserError("不能取消自己的管理员角色")
        _keep_one_admin(session, user, "降级")
    before = {"role": user.role, "department": user.department}
    uri = None
    if role == "admin" and user.role != "admin":
        uri = _enrol_totp(user)
    elif role != "admin":
        user.totp_secret = None
        user.totp_last_step = None
    user.role = new_role
    user.department = department if role == "department" else None
    revoke_user_sessions(session, user.id)
    _audit(session, actor, "user_update", username, before=before, after={"role": role, "department": user.department})
    return user, Secrets(totp_uri=uri)


def delete_user(session: Session, actor: Actor, username: str) -> None:
    """Remove an account and its sessions (the audit log keeps what it did)."""
    user = existing_user(session, username)
    if username == _self_name(actor):
        raise UserError("不能删除自己的账号")
    _keep_one_admin(session, user, "删除")
    delete_user_sessions(session, user.id)
    session.delete(user)
    _audit(session, actor, "user_delete", username, role=user.role)
