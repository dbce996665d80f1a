"""Lockout under parallel guessing: every attempt is counted, and no more than the limit are ever checked.

Found in use: ten parallel wrong passwords left `failed_logins` at 1 (each attempt read 0 and wrote 1),
so a burst of guesses was never locked out.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from service import clock
from service.audit.models import AuditRecord
from service.auth.service import LoginFailed, login
from service.db import Database
from service.settings import SecuritySettings
from service.users.models import User
from service.users.service import create_user
from tests.auth.fixtures import PASSWORD

GUESSERS = 50


def test_fifty_parallel_wrong_passwords_check_five_and_lock(database_url: str, frozen, cheap_argon2) -> None:
    policy = SecuritySettings()  # 5 attempts, 15 minutes
    db = Database(database_url)
    db.migrate()
    with db.session() as s:
        create_user(s, username="zhang", password=PASSWORD, role="officer", department=None, policy=policy)
    start = threading.Barrier(GUESSERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        start.wait(timeout=60)
        try:
            # As the API does: the refusal's audit record commits with the session.
            with db.session() as s:
                try:
                    login(s, username="zhang", password=f"Wrong!{n:03d}", totp=None, address="10.0.0.9", policy=policy)
                    outcome = "signed in"
                except LoginFailed:
                    outcome = "refused"
        except Exception as exc:  # recorded, so a crashed guesser cannot vanish from the count
            outcome = f"error: {exc!r}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert outcomes == ["refused"] * GUESSERS
    with db.session() as s:
        reasons = [
            r.detail["reason"]
            for r in s.execute(select(AuditRecord).where(AuditRecord.event_type == "login")).scalars()
        ]
        locks = s.execute(select(AuditRecord).where(AuditRecord.event_type == "account_locked")).scalars().all()
        user = s.execute(select(User).where(User.username == "zhang")).scalar_one()
    assert len(reasons) == GUESSERS
    # Exactly the allowed number of guesses had their password checked; all others met the lock.
    assert reasons.count("bad password") == policy.lockout_attempts, reasons
    assert len(locks) == 1
    assert user.locked_until is not None
    assert user.locked_until > clock.now()
    # The lock holds for the right password too, and lifts after its 15 minutes.
    with db.session() as s, pytest.raises(LoginFailed, match="locked until"):
        login(s, username="zhang", password=PASSWORD, totp=None, address="10.0.0.9", policy=policy)
    frozen.advance(timedelta(minutes=15, seconds=1))
    with db.session() as s:
        issued = login(s, username="zhang", password=PASSWORD, totp=None, address="10.0.0.9", policy=policy)
    assert issued.principal.username == "zhang"
    with db.session() as s:
        user = s.execute(select(User).where(User.username == "zhang")).scalar_one()
        assert (user.failed_logins, user.locked_until) == (0, None)
    db.dispose()
