"""Logging in and out: lockout, second factor, opaque session tokens with idle and absolute timeouts."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.orm import Session

from service import clock
from service.audit.service import record
from service.auth.models import AuthSession
from service.db import rows_affected
from service.principal import Principal
from service.settings import SecuritySettings
from service.users.models import User
from service.users.service import check_totp, get_by_username, principal_of, verify_password

# One message for every refusal, so a caller cannot tell a locked account from a wrong password.
LOGIN_FAILED = "用户名、密码或动态口令错误"


# The idle clock is restarted at most this often: a write per request would make every read a writer
# (on SQLite one at a time, each with its own fsync) for a precision nobody needs on a 30-minute timeout.
TOUCH_EVERY = timedelta(seconds=30)


class LoginFailed(Exception):
    """Credentials refused; the reason is in the audit log only.

    ``hint`` is what the person may be told beyond LOGIN_FAILED. A locked account says so to every attempt
    without checking the password: checking it and answering differently for the right one would let a
    guesser go on testing passwords through the lock. A disabled account says so only to the right password.
    """

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.hint = hint


@dataclass(frozen=True)
class Issued:
    """A new session: the secrets are handed out once and only their hashes are stored."""

    token: str
    csrf_token: str
    principal: Principal


def token_hash(token: str) -> str:
    """SHA-256 hex of a session or CSRF token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def login(
    session: Session,
    *,
    username: str,
    password: str,
    totp: str | None,
    address: str | None,
    policy: SecuritySettings,
) -> Issued:
    """Check the credentials and open a session; LoginFailed otherwise (audited either way).

    The attempt is counted and committed before the password is checked; the caller must commit the rest
    even on LoginFailed: the audit record (and a lock) are the point.
    """
    now = clock.now()
    user = get_by_username(session, username)

    def refuse(reason: str, hint: str | None = None) -> LoginFailed:
        record(
            session,
            event="login",
            principal_or_username=username,
            result="failure",
            address=address,
            detail={"reason": reason},
        )
        return LoginFailed(reason, hint)

    if user is None:
        verify_password(None, password)
        raise refuse("unknown user")
    # Counted before the password is checked, in one atomic UPDATE committed at once: parallel guesses
    # each get their own number, so no more than lockout_attempts of them are ever checked.
    attempt, locked_until = _count_attempt(session, user.id, now)
    session.commit()
    if locked_until is not None and locked_until > now:
        # Same work as a checked attempt (timing), but the answer never depends on the password.
        verify_password(None, password)
        minutes = max(1, math.ceil((locked_until - now).total_seconds() / 60))
        hint = f"账号因连续登录失败已被锁定，请 {minutes} 分钟后再试，或联系管理员解锁"
        raise refuse(f"locked until {locked_until.isoformat()}", hint)
    if attempt > policy.lockout_attempts:
        # Guesses that raced past the limit before the lock was written: refused unchecked, and the lock
        # is made sure of (the attempt that reached the limit may still be checking its password).
        verify_password(None, password)
        _lock(session, user.id, now, policy, username=username, address=address)
        raise refuse("too many attempts")
    password_ok = verify_password(user.password_hash, password)
    if password_ok and not user.active:
        raise refuse("inactive", "账号已停用，请联系管理员")
    second_ok = user.role != "admin" or check_totp(user, totp, now)
    if not (password_ok and second_ok):
        reason = "bad password" if not password_ok else ("totp missing" if not totp else "bad totp")
        if attempt >= policy.lockout_attempts:
            _lock(session, user.id, now, policy, username=username, address=address)
        raise refuse(reason)
    session.execute(update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None))
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            token_hash=token_hash(token),
            csrf_hash=token_hash(csrf),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=policy.absolute_timeout_hours),
            address=(address or "")[:64] or None,
        )
    )
    principal = principal_of(user, address)
    record(session, event="login", principal_or_username=principal, result="success", address=address)
    return Issued(token=token, csrf_token=csrf, principal=principal)


def _count_attempt(session: Session, user_id: int, now: datetime) -> tuple[int, datetime | None]:
    """Count one sign-in attempt atomically; (its number since the last success or lock, locked_until).

    A lock that has run out starts the count afresh, so an expired lock never keeps an account shut.
    """
    expired = and_(User.locked_until.is_not(None), User.locked_until <= now)
    row = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            failed_logins=case((expired, 1), else_=User.failed_logins + 1),
            locked_until=case((expired, None), else_=User.locked_until),
        )
        .returning(User.failed_logins, User.locked_until)
        .execution_options(synchronize_session=False)
    ).one()
    return row[0], row[1]


def _lock(
    session: Session, user_id: int, now: datetime, policy: SecuritySettings, *, username: str, address: str | None
) -> None:
    """Lock the account unless it already is; the one account_locked record goes with the lock."""
    until = now + timedelta(minutes=policy.lockout_minutes)
    locked = rows_affected(
        session,
        update(User)
        .where(User.id == user_id, or_(User.locked_until.is_(None), User.locked_until <= now))
        .values(locked_until=until)
        .execution_options(synchronize_session=False),
    )
    if locked:
        record(
            session,
            event="account_locked",
            principal_or_username=username,
            result="failure",
            address=address,
            detail={"until": until.isoformat(), "attempts": policy.lockout_attempts},
        )


@dataclass(frozen=True)
class Resolved:
    principal: Principal
    session_id: int
    csrf_hash: str | None


def resolve(session: Session, token: str, *, address: str | None, policy: SecuritySettings) -> Resolved | None:
    """The live session of ``token`` (its idle clock restarted), or None when unknown, revoked or timed out."""
    now = clock.now()
    row = session.execute(
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    auth, user = row
    idle_limit = timedelta(minutes=policy.idle_timeout_minutes)
    if auth.revoked_at is not None or now >= auth.expires_at or now - auth.last_seen_at >= idle_limit:
        return None
    if not user.active:
        return None
    if now - auth.last_seen_at >= TOUCH_EVERY:
        auth.last_seen_at = now
    return Resolved(principal=principal_of(user, address), session_id=auth.id, csrf_hash=auth.csrf_hash)


def touch(session: Session, session_id: int, *, policy: SecuritySettings) -> bool:
    """Keep a live session's idle clock running (an open alert stream is use); False once it has ended.

    The absolute timeout still applies, and a revoked or idle-expired session is not revived.
    """
    now = clock.now()
    auth = session.get(AuthSession, session_id)
    if auth is None or auth.revoked_at is not None or now >= auth.expires_at:
        return False
    if now - auth.last_seen_at >= timedelta(minutes=policy.idle_timeout_minutes):
        return False
    auth.last_seen_at = now
    return True


def is_live(session: Session, session_id: int, *, policy: SecuritySettings) -> bool:
    """Whether a session can still be used (not revoked, not expired, not idle); changes nothing."""
    now = clock.now()
    auth = session.get(AuthSession, session_id)
    if auth is None or auth.revoked_at is not None or now >= auth.expires_at:
        return False
    return now - auth.last_seen_at < timedelta(minutes=policy.idle_timeout_minutes)


def logout(session: Session, session_id: int) -> None:
    """Revoke one session on the server side."""
    session.execute(update(AuthSession).where(AuthSession.id == session_id).values(revoked_at=clock.now()))


def revoke_user_sessions(session: Session, user_id: int) -> None:
    """End every open session of the user: a disabled, reset or re-roled account starts again from the login."""
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )


def delete_user_sessions(session: Session, user_id: int) -> None:
    """Remove every session row of a user whose account is being deleted."""
    session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))


def check_csrf(resolved: Resolved, header: str | None, cookie: str | None) -> bool:
    """Double submit: the header echoes the cookie, and both are this session's CSRF token."""
    if not header or not cookie or resolved.csrf_hash is None:
        return False
    return secrets.compare_digest(header, cookie) and secrets.compare_digest(token_hash(header), resolved.csrf_hash)


def purge_sessions(session: Session, *, policy: SecuritySettings) -> int:
    """Delete sessions that can no longer be used (expired, idle or revoked over a day ago); the count."""
    now = clock.now()
    stale = now - timedelta(days=1)
    return rows_affected(
        session,
        delete(AuthSession).where(
            or_(
                AuthSession.expires_at < now,
                AuthSession.last_seen_at < now - timedelta(minutes=policy.idle_timeout_minutes),
                AuthSession.revoked_at < stale,
            )
        ),
    )
