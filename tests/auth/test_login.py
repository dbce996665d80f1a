"""Signing in and out with bearer tokens: lockout, timeouts, revocation, second factor for admins."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.audit.models import AuditRecord
from service.auth.service import LOGIN_FAILED
from tests.auth.fixtures import PASSWORD, Accounts


def _login(client: TestClient, username: str, password: str = PASSWORD, **extra: str):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password, **extra})


def _audit(client: TestClient) -> list[AuditRecord]:
    with client.app.state.ctx.db.session() as session:
        return list(session.execute(select(AuditRecord).order_by(AuditRecord.id)).scalars())


def _me(client: TestClient, token: str):
    return client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_a_token_identifies_the_caller_and_nothing_else_does(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    response = _login(client, "zhang")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = _me(client, body["access_token"])
    assert me.status_code == 200
    assert me.json() == {
        "username": "zhang",
        "role": "officer",
        "department": None,
        "sees_personal_data": False,
        "must_change_password": False,
        "home": "/alerts",
    }
    anonymous = client.get("/api/v1/auth/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert _me(client, body["access_token"] + "x").status_code == 401
    success = [r for r in _audit(client) if r.event_type == "login"]
    assert [(r.username, r.role, r.result, r.address) for r in success] == [
        ("zhang", "officer", "success", "testclient")
    ]


def test_wrong_password_and_unknown_user_answer_alike_and_are_audited(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    wrong = _login(client, "zhang", "Wrong!pass123")
    unknown = _login(client, "nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": LOGIN_FAILED}
    failures = [(r.username, r.result, r.detail["reason"], r.address) for r in _audit(client)]
    assert failures == [
        ("zhang", "failure", "bad password", "testclient"),
        ("nobody", "failure", "unknown user", "testclient"),
    ]


def test_five_failures_lock_the_account_for_fifteen_minutes(client: TestClient, accounts: Accounts, frozen) -> None:
    accounts.add("zhang", "officer")
    for _ in range(5):
        assert _login(client, "zhang", "Wrong!pass123").status_code == 401
    guessed = _login(client, "zhang", "Guess!pass456")
    locked = _login(client, "zhang")
    assert locked.status_code == 401
    # The owner is told why and for how long; the answer is the same whatever password is sent, so a guesser
    # cannot go on testing passwords through the lock.
    assert locked.json() == {"detail": "账号因连续登录失败已被锁定，请 15 分钟后再试，或联系管理员解锁"}
    assert guessed.json() == locked.json()
    events = [(r.event_type, r.result) for r in _audit(client)]
    assert events.count(("account_locked", "failure")) == 1
    assert _audit(client)[-1].detail["reason"].startswith("locked until")

    frozen.advance(timedelta(minutes=14, seconds=59))
    assert _login(client, "zhang").status_code == 401
    frozen.advance(timedelta(seconds=1))
    assert _login(client, "zhang").status_code == 200


def test_a_success_resets_the_failure_count(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    for _ in range(4):
        _login(client, "zhang", "Wrong!pass123")
    assert _login(client, "zhang").status_code == 200
    for _ in range(4):
        _login(client, "zhang", "Wrong!pass123")
    assert _login(client, "zhang").status_code == 200


def test_idle_sessions_expire_after_thirty_minutes(client: TestClient, accounts: Accounts, frozen) -> None:
    accounts.add("zhang", "officer")
    token = accounts.token("zhang")
    frozen.advance(timedelta(minutes=29))
    assert _me(client, token).status_code == 200
    frozen.advance(timedelta(minutes=29))
    assert _me(client, token).status_code == 200, "each use restarts the idle clock"
    frozen.advance(timedelta(minutes=30))
    assert _me(client, token).status_code == 401


def test_sessions_end_after_twelve_hours_however_busy(client: TestClient, accounts: Accounts, frozen) -> None:
    accounts.add("zhang", "officer")
    token = accounts.token("zhang")
    for _ in range(35):  # 11 h 40 min of activity every 20 minutes
        frozen.advance(timedelta(minutes=20))
        assert _me(client, token).status_code == 200
    frozen.advance(timedelta(minutes=20))
    assert _me(client, token).status_code == 401


def test_logout_revokes_the_token_on_the_server(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    token = accounts.token("zhang")
    other = accounts.token("zhang")
    out = client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 204
    assert _me(client, token).status_code == 401
    assert _me(client, other).status_code == 200, "only the session that logged out ends"
    assert [r.event_type for r in _audit(client)][-1] == "logout"


def test_admins_need_a_fresh_totp_code(client: TestClient, accounts: Accounts, frozen) -> None:
    accounts.add("root", "admin")
    assert _login(client, "root").status_code == 401
    assert _login(client, "root", totp="000000" if accounts.totp("root") != "000000" else "111111").status_code == 401
    code = accounts.totp("root")
    ok = _login(client, "root", totp=code)
    assert ok.status_code == 200
    assert _me(client, ok.json()["access_token"]).json()["sees_personal_data"] is True
    assert _login(client, "root", totp=code).status_code == 401, "a code is accepted once"
    frozen.advance(timedelta(seconds=30))
    assert _login(client, "root", totp=accounts.totp("root")).status_code == 200
    reasons = [r.detail.get("reason") for r in _audit(client) if r.result == "failure"]
    assert reasons == ["totp missing", "bad totp", "bad totp"]


def test_inactive_users_cannot_sign_in_or_use_their_tokens(client: TestClient, accounts: Accounts) -> None:
    from sqlalchemy import update

    from service.users.models import User

    accounts.add("zhang", "officer")
    token = accounts.token("zhang")
    with client.app.state.ctx.db.session() as session:
        session.execute(update(User).where(User.username == "zhang").values(active=False))
    assert _me(client, token).status_code == 401
    assert _login(client, "zhang").status_code == 401
