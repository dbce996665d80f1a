"""Account administration through the API: what an admin does to users and what those users then notice."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.audit.models import AuditRecord
from tests.auth.fixtures import PASSWORD, Accounts

DEPARTMENTS = """\
departments:
  - id: env
    name: 市生态环境局
    rules: []
  - id: water
    name: 市水务局
    rules: []
"""


@pytest.fixture
def admin(client: TestClient, accounts: Accounts) -> dict[str, str]:
    (client.app.state.ctx.settings.config_dir / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    accounts.add("root", "admin")
    return accounts.headers("root")


def _events(client: TestClient) -> list[tuple[str, str | None]]:
    with client.app.state.ctx.db.session() as session:
        rows = session.execute(select(AuditRecord).order_by(AuditRecord.id)).scalars()
        return [(r.event_type, (r.detail or {}).get("username")) for r in rows if r.event_type.startswith("user_")]


def test_admin_creates_users_and_departments_must_exist(client: TestClient, accounts: Accounts, admin) -> None:
    bad = client.post(
        "/api/v1/users", json={"username": "lisi", "role": "department", "department": "nosuch"}, headers=admin
    )
    assert bad.status_code == 422
    assert "nosuch" in bad.json()["detail"]["message"]
    assert "env（市生态环境局）" in bad.json()["detail"]["message"]

    made = client.post(
        "/api/v1/users",
        json={"username": "lisi", "role": "department", "department": "env", "password": PASSWORD},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["user"]["department"] == "env"
    assert made.json()["temporary_password"] is None

    second_admin = client.post("/api/v1/users", json={"username": "root2", "role": "admin"}, headers=admin)
    assert second_admin.status_code == 201
    body = second_admin.json()
    assert body["temporary_password"]  # generated, shown once
    assert body["user"]["must_change_password"] is True
    assert body["totp_uri"].startswith("otpauth://totp/")
    assert body["totp_qr"].startswith("data:image/svg+xml")
    assert "<svg" in unquote(body["totp_qr"])
    assert "<path" in unquote(body["totp_qr"])

    listed = client.get("/api/v1/users", headers=admin).json()
    assert [u["username"] for u in listed["results"]] == ["lisi", "root", "root2"]
    assert listed["total"] == 3

    accounts.add("officer1", "officer")
    refused = client.get("/api/v1/users", headers=accounts.headers("officer1"))
    assert refused.status_code == 403
    assert _events(client) == [("user_add", "lisi"), ("user_add", "root2")]


def test_locked_account_says_so_whatever_the_password_and_admin_unlocks(
    client: TestClient, accounts: Accounts, admin
) -> None:
    accounts.add("lisi", "officer")
    for _ in range(5):
        assert client.post("/api/v1/auth/token", data={"username": "lisi", "password": "Wrong-pass-123"}).status_code
    wrong = client.post("/api/v1/auth/token", data={"username": "lisi", "password": "Wrong-pass-123"})
    right = client.post("/api/v1/auth/token", data={"username": "lisi", "password": PASSWORD})
    assert right.status_code == wrong.status_code == 401
    assert "已被锁定" in right.json()["detail"]
    assert "15 分钟" in right.json()["detail"]
    # While locked the answer does not depend on the password: a guesser cannot test guesses through it.
    assert wrong.json() == right.json()

    listed = {u["username"]: u for u in client.get("/api/v1/users", headers=admin).json()["results"]}
    assert listed["lisi"]["locked"] is True
    assert client.post("/api/v1/users/lisi/unlock", headers=admin).status_code == 200
    assert client.post("/api/v1/auth/token", data={"username": "lisi", "password": PASSWORD}).status_code == 200
    assert ("user_unlock", "lisi") in _events(client)


def test_reset_password_forces_a_change_before_anything_else(client: TestClient, accounts: Accounts, admin) -> None:
    accounts.add("lisi", "officer")
    old_token = accounts.token("lisi")
    reset = client.post("/api/v1/users/lisi/reset-password", json={}, headers=admin)
    assert reset.status_code == 200
    temp = reset.json()["temporary_password"]
    assert temp
    assert reset.json()["user"]["must_change_password"] is True
    # The old session ended; the old password no longer works.
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "lisi", "password": PASSWORD}).status_code == 401

    headers = {"Authorization": f"Bearer {accounts.token('lisi', temp)}"}
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert me["must_change_password"] is True
    assert me["home"] == "/password"
    blocked = client.get("/api/v1/tickets", headers=headers)
    assert blocked.status_code == 403
    assert "请先修改密码" in blocked.json()["detail"]["message"]

    weak = client.post(
        "/api/v1/auth/password", json={"current_password": temp, "new_password": "short"}, headers=headers
    )
    assert weak.status_code == 422
    assert "密码至少" in weak.json()["detail"]["message"]
    new = "Nw7#kLm2!pQz"
    done = client.post("/api/v1/auth/password", json={"current_password": temp, "new_password": new}, headers=headers)
    assert done.status_code == 204
    assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers=headers).json()["home"] == "/alerts"


def test_disable_enable_change_role_and_delete(client: TestClient, accounts: Accounts, admin) -> None:
    accounts.add("lisi", "department", "env")
    token = accounts.token("lisi")
    off = client.patch("/api/v1/users/lisi", json={"active": False}, headers=admin)
    assert off.status_code == 200
    assert off.json()["user"]["active"] is False
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    refused = client.post("/api/v1/auth/token", data={"username": "lisi", "password": PASSWORD})
    assert refused.status_code == 401
    assert "已停用" in refused.json()["detail"]
    assert client.patch("/api/v1/users/lisi", json={"active": True}, headers=admin).status_code == 200

    moved = client.patch("/api/v1/users/lisi", json={"role": "department", "department": "nosuch"}, headers=admin)
    assert moved.status_code == 422
    moved = client.patch("/api/v1/users/lisi", json={"role": "department", "department": "water"}, headers=admin)
    assert moved.json()["user"]["department"] == "water"
    me = client.get("/api/v1/auth/me", headers=accounts.headers("lisi")).json()
    assert me["department"] == "water"
    promoted = client.patch("/api/v1/users/lisi", json={"role": "leader"}, headers=admin).json()
    assert promoted["user"]["role"] == "leader"
    assert promoted["user"]["department"] is None

    own = client.delete("/api/v1/users/root", headers=admin)
    assert own.status_code == 422
    assert "自己" in own.json()["detail"]["message"]
    assert client.delete("/api/v1/users/lisi", headers=admin).status_code == 204
    assert client.delete("/api/v1/users/lisi", headers=admin).status_code == 404
    gone = client.post("/api/v1/auth/token", data={"username": "lisi", "password": PASSWORD})
    assert gone.status_code == 401
    assert [e for e, name in _events(client) if name == "lisi"] == [
        "user_disable",
        "user_enable",
        "user_update",
        "user_update",
        "user_delete",
    ]


def test_lockout_hint_counts_down(client: TestClient, accounts: Accounts, frozen, admin) -> None:
    accounts.add("lisi", "officer")
    for _ in range(5):
        client.post("/api/v1/auth/token", data={"username": "lisi", "password": "Wrong-pass-123"})
    frozen.advance(timedelta(minutes=10))
    right = client.post("/api/v1/auth/token", data={"username": "lisi", "password": PASSWORD})
    assert "5 分钟" in right.json()["detail"]
