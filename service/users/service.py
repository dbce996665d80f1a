"""Creating users, checking their passwords and second factor, and a user choosing a new password."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from loguru import logger
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from service import clock
from service.audit.service import record
from service.principal import Principal
from service.secrets_at_rest import EncryptedString, is_encrypted
from service.settings import SecuritySettings
from service.users.models import User
from service.vocabulary import ROLES, Role, is_role

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps "no such user" as slow as "wrong password".
# A literal made with the hasher's parameters (argon2id, m=65536, t=3, p=4; a test keeps them equal):
# hashing it at import cost every process that opens the database (each CLI command) 0.3 s of CPU.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$ol2kERgTItVg5QsdwnhFYQ$lpJW/kqaSqRJeYK4fMFeGHGi0wyJeFRZZ6xzciwWNS8"

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
DEPARTMENT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
TOTP_ISSUER = "yuqing"
# The longest password zxcvbn scores (its own default limit; it raises ValueError past it).
ZXCVBN_MAX = 72


class UserError(ValueError):
    """Bad input for a user: the message names what is wrong."""


class UserNotFound(LookupError):
    """No account of that name."""


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problems(password: str, username: str, policy: SecuritySettings) -> list[str]:
    """What the password policy finds wrong with ``password`` (empty when it is acceptable)."""
    problems = []
    if len(password) < policy.password_min_length:
        problems.append(f"密码至少 {policy.password_min_length} 个字符")
    classes = sum(
        [
            any(c.isupper() for c in password),
            any(c.islower() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < policy.password_min_classes:
        problems.append(f"密码需包含大写字母、小写字母、数字、符号中的至少 {policy.password_min_classes} 类")
    if username and username.lower() in password.lower():
        problems.append("密码不能包含用户名")
    if not problems and _guessable(password, username):
        problems.append("密码太常见或太容易猜到（常见密码、键盘序列、年份、单词加数字等），请换一个")
    return problems


def _guessable(password: str, username: str) -> bool:
    """In the 10,000 most common passwords, or zxcvbn's strength score below 3 (of 0-4)."""
    if password.lower() in _common_passwords():
        return True
    # zxcvbn refuses (ValueError) a password over its max_length, and its running time grows with length;
    # a password this long that passed the checks above is judged by its first ZXCVBN_MAX characters.
    return zxcvbn(password[:ZXCVBN_MAX], user_inputs=[username] if username else [], max_length=ZXCVBN_MAX)["score"] < 3


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"][:10_000])


def known_role(role: str) -> Role:
    """``role`` as one of the roles; UserError listing them when it is none."""
    if not is_role(role):
        raise UserError(f"未知角色 {role!r}，可选: {' | '.join(ROLES)}")
    return role


def validate_role(role: str, department: str | None) -> None:
    """The role exists and a department is given for, and only for, the department role."""
    known_role(role)
    if role == "department":
        if not department:
            raise UserError("department 角色必须用 --department 指定部门 ID")
        if not DEPARTMENT_RE.match(department):
            raise UserError(f"部门 ID {department!r} 无效 (小写字母、数字、短横线)")
    elif department:
        raise UserError(f"{role} 角色不属于某个部门，不能指定 --department")


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    department: str | None,
    policy: SecuritySettings,
) -> tuple[User, str | None]:
    """Add a user; the TOTP provisioning URI is returned (once) for admins, who need a second factor."""
    if not USERNAME_RE.match(username):
        raise UserError(f"用户名 {username!r} 无效 (2-64 个字母、数字或 _ . @ -)")
    validate_role(role, department)
    problems = password_problems(password, username, policy)
    if problems:
        raise UserError("；".join(problems))
    if session.execute(select(User.id).where(User.username == username)).first():
        raise UserError(f"用户 {username} 已存在")
    now = clock.now()
    secret = pyotp.random_base32() if role == "admin" else None
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        department=department,
        active=True,
        totp_secret=secret,
        failed_logins=0,
        created_at=now,
        password_changed_at=now,
        must_change_password=False,
    )
    session.add(user)
    session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER) if secret else None
    return user, uri


def get_by_username(session: Session, username: str) -> User | None:
    """The user named ``username``, or None."""
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def existing_user(session: Session, username: str) -> User:
    """The user named ``username``; UserNotFound when there is none."""
    user = get_by_username(session, username)
    if user is None:
        raise UserNotFound(f"用户 {username} 不存在")
    return user


def change_own_password(
    session: Session, principal: Principal, *, current: str, new: str, policy: SecuritySettings
) -> None:
    """The signed-in user chooses a new password (required after a reset); the old one must be given."""
    user = existing_user(session, principal.username)
    if not verify_password(user.password_hash, current):
        raise UserError("当前密码不正确")
    if new == current:
        raise UserError("新密码不能与当前密码相同")
    problems = password_problems(new, user.username, policy)
    if problems:
        raise UserError("；".join(problems))
    user.password_hash = hash_password(new)
    user.password_changed_at = clock.now()
    user.must_change_password = False
    record(session, event="password_change", principal_or_username=principal, result="success")


def check_totp(user: User, code: str | None, at: datetime) -> bool:
    """Whether ``code`` is the user's current TOTP (±1 step); a code is accepted only once."""
    if not user.totp_secret or not code:
        return False
    code = code.strip()
    totp = pyotp.TOTP(user.totp_secret)
    step = int(at.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if user.totp_last_step is not None and candidate <= user.totp_last_step:
            continue
        if totp.verify(code, for_time=candidate * totp.interval):
            user.totp_last_step = candidate
            return True
    return False


def principal_of(user: User, address: str | None = None) -> Principal:
    """The Principal a request by ``user`` runs as."""
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        department=user.department if user.role == "department" else None,
        address=address,
        must_change_password=bool(user.must_change_password),
    )


def encrypt_plaintext_secrets(session: Session) -> int:
    """Encrypt every TOTP secret still stored in plain text (written before encryption); how many."""
    # Raw column values: the ORM would decrypt them and hide which ones are still plain.
    stored = session.execute(text("SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL")).all()
    plain = [(user_id, value) for user_id, value in stored if not is_encrypted(value)]
    rewrite = text("UPDATE users SET totp_secret = :secret WHERE id = :id").bindparams(
        bindparam("secret", type_=EncryptedString)
    )
    for user_id, value in plain:
        session.execute(rewrite, {"secret": value, "id": user_id})
    if plain:
        logger.info("已加密 {} 个以明文保存的 TOTP 密钥", len(plain))
    return len(plain)
