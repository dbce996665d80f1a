"""The ledger endpoints through the real app: visibility, actions and their errors, masking, audit, stats."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.audit.models import AuditRecord
from service.ledger.actions import act
from service.ledger.config import ledger_config
from service.settings import load_settings
from service.users import service as users_service
from tests.auth.fixtures import Accounts
from tests.ledger.builders import ENV_USER, T0, new_ticket


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, frozen):
    # Real argon2, cheap parameters: these tests are about tickets, and default hashing costs ~1 s per login.
    monkeypatch.setattr(users_service, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "departments.yaml").write_text(
        "departments:\n  - {id: env, name: 市生态环境局, rules: []}\n  - {id: water, name: 市水务局, rules: []}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(config_dir)
    settings.database.url = database_url
    with TestClient(create_app(settings)) as test_client:
        yield test_client


ROLES = {
    "env1": ("department", "env"),
    "water1": ("department", "water"),
    "zhang": ("officer", None),
    "wang": ("leader", None),
    "audit1": ("auditor", None),
    "root": ("admin", None),
}


class Users(Accounts):
    """Accounts created on first use, each signed in once (password hashing is slow on purpose)."""

    def headers(self, username: str) -> dict[str, str]:
        cache = self.__dict__.setdefault("_headers", {})
        if username not in cache:
            self.add(username, *ROLES[username])
            cache[username] = {"Authorization": f"Bearer {self.token(username)}"}
        return cache[username]


@pytest.fixture
def accounts(client: TestClient, frozen) -> Users:
    return Users(client, frozen)


def seed(client: TestClient) -> dict[str, int]:
    """An env ticket with a phone number in its title, a water ticket, and an overdue env ticket."""
    ctx = client.app.state.ctx
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        env = new_ticket(s, config, 1, title="市民13812345678反映化工厂异味", policy=config.policy).id
        water = new_ticket(s, config, 2, department="water", title="自来水浑浊", policy=config.policy).id
        late = new_ticket(
            s, config, 3, severity="critical", discovered_at=T0 - timedelta(hours=2), policy=config.policy
        ).id
    return {"env": env, "water": water, "late": late}


def test_department_users_list_and_read_only_their_own_tickets(client, accounts) -> None:
    ids = seed(client)
    env = client.get("/api/v1/tickets", headers=accounts.headers("env1")).json()
    assert env["total"] == 2
    assert {t["id"] for t in env["results"]} == {ids["env"], ids["late"]}
    # Asking for another department does not widen the view.
    assert client.get("/api/v1/tickets?department=water", headers=accounts.headers("env1")).json()["total"] == 0
    assert client.get(f"/api/v1/tickets/{ids['water']}", headers=accounts.headers("env1")).status_code == 404
    officer = client.get("/api/v1/tickets", headers=accounts.headers("zhang")).json()
    assert officer["total"] == 3
    overdue = client.get("/api/v1/tickets?overdue=true", headers=accounts.headers("zhang")).json()
    assert [t["id"] for t in overdue["results"]] == [ids["late"]]
    assert client.get("/api/v1/tickets?status=acknowledged", headers=accounts.headers("wang")).json()["total"] == 0
    assert client.get("/api/v1/tickets?status=bogus", headers=accounts.headers("wang")).status_code == 422
    assert client.get("/api/v1/tickets", headers=accounts.headers("audit1")).status_code == 403
    assert client.get("/api/v1/tickets").status_code == 401
    day = client.get("/api/v1/tickets?from=2026-03-02&to=2026-03-02", headers=accounts.headers("zhang")).json()
    assert day["total"] == 3
    assert client.get("/api/v1/tickets?from=2026-03-03", headers=accounts.headers("zhang")).json()["total"] == 0


def test_a_ticket_reads_as_the_contract_says(client, accounts) -> None:
    ids = seed(client)
    body = client.get(f"/api/v1/tickets/{ids['env']}", headers=accounts.headers("env1")).json()
    assert body["status"] == "new"
    assert body["deadlines"]["acknowledge"] == "2026-03-02T14:00:00+08:00"
    assert body["discovered_at"] == "2026-03-02T10:00:00+08:00"
    assert body["met"] == {"acknowledge": None, "handle": None, "respond": None}
    assert body["overdue"] == {"acknowledge": False, "handle": False, "respond": False}
    assert body["time_left"]["acknowledge"] == 4 * 3600
    assert body["allowed_actions"] == ["acknowledge", "return"]
    assert body["items"][0]["item_id"] == "item-1"
    assert body["timeline"][0]["action"] == "create"
    assert body["title"] == "市民138****5678反映化工厂异味"
    officer = client.get(f"/api/v1/tickets/{ids['env']}", headers=accounts.headers("zhang")).json()
    assert officer["allowed_actions"] == ["reassign", "escalate"]
    assert officer["title"] == "市民138****5678反映化工厂异味"
    admin = client.get(f"/api/v1/tickets/{ids['env']}", headers=accounts.headers("root")).json()
    assert admin["title"] == "市民13812345678反映化工厂异味"
    late = client.get(f"/api/v1/tickets/{ids['late']}", headers=accounts.headers("wang")).json()
    assert late["overdue"]["acknowledge"] is True
    assert late["time_left"]["acknowledge"] == -90 * 60
    assert late["allowed_actions"] == []


def test_actions_answer_200_409_403_422_and_are_audited(client, accounts) -> None:
    ids = seed(client)
    env = accounts.headers("env1")
    url = f"/api/v1/tickets/{ids['env']}/actions"
    ok = client.post(url, json={"action": "acknowledge", "version": 1, "note": "已签收"}, headers=env)
    assert ok.status_code == 200, ok.text
    assert (ok.json()["status"], ok.json()["version"]) == ("acknowledged", 2)
    assert ok.json()["met"]["acknowledge"] == "2026-03-02T10:00:00+08:00"
    stale = client.post(url, json={"action": "handle", "result": "已整改", "version": 1}, headers=env)
    assert stale.status_code == 409
    assert stale.json()["detail"]["current_version"] == 2
    wrong_state = client.post(url, json={"action": "close", "version": 2}, headers=env)
    assert wrong_state.status_code == 409
    assert "不能办结" in wrong_state.json()["detail"]["message"]
    leader = client.post(url, json={"action": "escalate", "version": 2}, headers=accounts.headers("wang"))
    assert leader.status_code == 403
    no_until = client.post(url, json={"action": "request_extension", "note": "需检测", "version": 2}, headers=env)
    assert no_until.status_code == 422
    assert no_until.json()["detail"]["field"] == "until"
    unknown = client.post(url, json={"action": "delete", "version": 2}, headers=env)
    assert unknown.status_code == 422
    other = client.post(url, json={"action": "handle", "result": "x", "version": 2}, headers=accounts.headers("water1"))
    assert other.status_code == 404
    extension = client.post(
        url,
        json={
            "action": "request_extension",
            "note": "需第三方检测",
            "until": "2026-03-20T18:00:00+08:00",
            "version": 2,
        },
        headers=env,
    )
    assert extension.status_code == 200
    assert extension.json()["extension"]["pending"] is True
    with client.app.state.ctx.db.session() as s:
        audited = s.execute(
            select(AuditRecord.username, AuditRecord.result)
            .where(AuditRecord.event_type == "ticket_action")
            .order_by(AuditRecord.id)
        ).all()
    assert [tuple(r) for r in audited] == [
        ("env1", "success"),
        ("env1", "failure"),
        ("env1", "failure"),
        ("env1", "failure"),
        ("water1", "denied"),
        ("env1", "success"),
    ]
    # A leader changes nothing: refused before the ledger is reached, and audited as a denial.
    with client.app.state.ctx.db.session() as s:
        leader_denials = s.execute(
            select(AuditRecord.result).where(AuditRecord.event_type == "authz_denied", AuditRecord.username == "wang")
        ).all()
    assert [tuple(r) for r in leader_denials] == [("denied",)]


def test_stats_per_department(client, accounts, frozen) -> None:
    ids = seed(client)
    ctx = client.app.state.ctx
    config = ledger_config(ctx.settings)
    frozen.advance(timedelta(hours=1))
    with ctx.db.session() as s:
        act(s, ids["env"], ENV_USER, "acknowledge", config=config)
        act(s, ids["late"], ENV_USER, "acknowledge", config=config)
    body = client.get("/api/v1/stats?from=2026-03-02&to=2026-03-02", headers=accounts.headers("zhang")).json()
    by_dept = {row["department"]: row for row in body["results"]}
    assert body["total"] == 2
    env = by_dept["env"]
    assert env["total"] == 2
    assert env["by_status"]["acknowledged"] == 2
    # One acknowledged in 1h of 4h, the critical one 3h after discovery against 30 minutes.
    assert env["acknowledge_on_time_rate"] == 0.5
    assert env["acknowledge_avg_hours"] == 2.0
    assert env["avg_discover_hours"] == 1.0  # items published 00:00 UTC; discovered 2h and 0h later
    assert by_dept["water"]["acknowledge_on_time_rate"] is None
    own = client.get("/api/v1/stats", headers=accounts.headers("water1")).json()
    assert [row["department"] for row in own["results"]] == ["water"]


def test_officers_regrade_a_ticket_and_open_deadlines_follow(client, accounts) -> None:
    ids = seed(client)
    before = client.get(f"/api/v1/tickets/{ids['env']}", headers=accounts.headers("zhang")).json()
    assert before["deadlines"]["acknowledge"] == "2026-03-02T14:00:00+08:00"  # normal: 4h
    regraded = client.put(
        f"/api/v1/tickets/{ids['env']}/severity",
        json={"severity": "critical", "version": before["version"], "note": "涉及人员伤亡"},
        headers=accounts.headers("zhang"),
    )
    assert regraded.status_code == 200, regraded.text
    body = regraded.json()
    assert body["severity"] == "critical"
    assert body["deadlines"]["acknowledge"] == "2026-03-02T10:30:00+08:00"  # critical: 30m from discovery
    assert body["timeline"][-1]["action"] == "change_severity"
    stale = client.put(
        f"/api/v1/tickets/{ids['env']}/severity",
        json={"severity": "minor", "version": before["version"]},
        headers=accounts.headers("zhang"),
    )
    assert stale.status_code == 409
    denied = client.put(
        f"/api/v1/tickets/{ids['env']}/severity", json={"severity": "minor"}, headers=accounts.headers("env1")
    )
    assert denied.status_code == 403
    # Told what was refused: re-grading, not 改派.
    assert "无权调整严重程度" in str(denied.json()["detail"])
    hidden = client.put(
        f"/api/v1/tickets/{ids['water']}/severity", json={"severity": "minor"}, headers=accounts.headers("env1")
    )
    assert hidden.status_code in (403, 404)


def test_each_reveal_of_personal_data_to_an_admin_is_audited(client, accounts) -> None:
    ids = seed(client)
    ctx = client.app.state.ctx

    def reveals() -> list[AuditRecord]:
        with ctx.db.session() as session:
            rows = session.execute(select(AuditRecord).where(AuditRecord.event_type == "personal_data.reveal"))
            return list(rows.scalars())

    officer = client.get(f"/api/v1/tickets/{ids['env']}", headers=accounts.headers("zhang")).json()
    assert "13812345678" not in officer["title"]
    assert reveals() == []
    admin = client.get(f"/api/v1/tickets/{ids['env']}", headers=accounts.headers("root")).json()
    assert admin["title"] == "市民13812345678反映化工厂异味"
    found = reveals()
    assert len(found) == 1
    assert found[0].username == "root"
    assert found[0].detail["path"] == f"/api/v1/tickets/{ids['env']}"
    # A ticket without personal data shows nothing to reveal.
    client.get(f"/api/v1/tickets/{ids['water']}", headers=accounts.headers("root"))
    assert len(reveals()) == 1
