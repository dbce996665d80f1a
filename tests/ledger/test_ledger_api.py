"""The ledger endpoints through the real app: visibility, actions and their errors, masking, audit, stats."""

from __future__ import annotations

import json
import re
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
from tests.item_stores import on_paired_stores, use_item_store
from tests.ledger.builders import ENV_USER, T0, new_ticket


@pytest.fixture
def client(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    item_store: str,
    frozen,
):
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
    use_item_store(settings, item_store, request)
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


def _stream_events(client: TestClient, headers: dict[str, str], after: int = 0) -> list[dict]:
    """The ``ticket`` events of the change stream from ``after`` until it falls idle (first keep-alive)."""
    events: list[dict] = []
    with client.stream("GET", f"/api/v1/tickets/stream?after={after}", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith(": keep-alive"):
                break
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name == "ticket":
                events.append(json.loads(line.removeprefix("data: ")))
    return events


def test_the_ticket_change_stream_sends_every_change_and_keeps_departments_apart(client, accounts, monkeypatch) -> None:
    from service.auth import event_stream

    monkeypatch.setattr(event_stream, "KEEPALIVE_SECONDS", 0.3)  # an idle stream says so quickly
    ids = seed(client)
    officer, env, water = accounts.headers("zhang"), accounts.headers("env1"), accounts.headers("water1")
    act_on = lambda ticket, who, **body: client.post(f"/api/v1/tickets/{ticket}/actions", json=body, headers=who)  # noqa: E731
    assert act_on(ids["late"], env, action="acknowledge", version=1).status_code == 200
    assert (
        act_on(ids["env"], officer, action="reassign", department="water", note="属水务", version=1).status_code == 200
    )
    assert act_on(ids["env"], water, action="acknowledge", version=2).status_code == 200
    assert act_on(ids["water"], water, action="acknowledge", version=1).status_code == 200

    seen = {who: _stream_events(client, accounts.headers(who)) for who in ("zhang", "env1", "water1")}
    as_pairs = {who: [(e["ticket_id"], e["action"]) for e in events] for who, events in seen.items()}
    # The officer sees every change, in order: created, acted on, reassigned.
    assert (ids["late"], "acknowledge") in as_pairs["zhang"]
    assert as_pairs["zhang"][-3:] == [
        (ids["env"], "reassign"),
        (ids["env"], "acknowledge"),
        (ids["water"], "acknowledge"),
    ]
    # env sees its own tickets and the reassignment that took one away, nothing of water's work after it.
    assert (ids["late"], "acknowledge") in as_pairs["env1"]
    assert (ids["env"], "reassign") in as_pairs["env1"]
    assert (ids["env"], "acknowledge") not in as_pairs["env1"]
    assert all(ticket != ids["water"] for ticket, _ in as_pairs["env1"])
    # water sees its own and the ticket it received, never env's own ticket.
    assert {(ids["env"], "reassign"), (ids["env"], "acknowledge"), (ids["water"], "acknowledge")} <= set(
        as_pairs["water1"]
    )
    assert all(ticket != ids["late"] for ticket, _ in as_pairs["water1"])
    # Events carry no ticket text: a list reloads what it may see.
    assert set(seen["env1"][0]) == {"ticket_id", "action", "at"}
    assert seen["env1"][0]["at"].endswith("+08:00")
    # A stream opened now starts now; the auditor has no tickets and no stream.
    assert _stream_events(client, officer, after=10_000) == []
    assert client.get("/api/v1/tickets/stream", headers=accounts.headers("audit1")).status_code == 403


@on_paired_stores
def test_hot_terms_of_the_period_are_words_without_stop_words_or_numbers(client, accounts) -> None:
    from service.store.base import Item, item_id

    seed(client)
    texts = [
        ("青川化工厂夜间排污", "居民反映化工厂排污，异味严重，电话13812345678。"),
        ("化工厂排污扰民", "我们希望相关部门尽快处理化工厂排污问题。"),
        ("河边化工厂排污", "化工厂排污导致河水发黑。"),
        ("小区停水三天", "小区停水一周了，三个单元无人处理。"),
    ]
    now = T0
    client.app.state.ctx.store.upsert(
        [
            Item(id=item_id("demo-12345", f"T{n}"), source="demo-12345", channel="hotline", external_id=f"T{n}",
                 title=title, content=content, published_at=now - timedelta(hours=1), fetched_at=now)
            for n, (title, content) in enumerate(texts)
        ]
    )  # fmt: skip
    page = client.get("/api/v1/stats/terms?from=2026-03-02&to=2026-03-02", headers=accounts.headers("wang")).json()
    counts = {row["term"]: row["count"] for row in page["results"]}
    assert page["basis"] == "items"
    assert page["sample"] == 4
    assert counts["化工厂"] == 3  # counted once per text, however often a text repeats it
    assert counts["排污"] == 3
    assert page["results"][0]["term"] in ("化工厂", "排污")
    assert "停水" in counts
    assert not {"居民", "反映", "我们", "希望", "相关部门", "处理", "问题"} & set(counts)  # stop words
    assert not any(ch.isdigit() for term in counts for ch in term)  # never a phone number
    assert not {"三天", "一周", "三个"} & set(counts)  # nor an amount in Chinese numerals
    # Outside the period: nothing.
    assert (
        client.get("/api/v1/stats/terms?from=2026-02-01&to=2026-02-02", headers=accounts.headers("wang")).json()[
            "results"
        ]
        == []
    )
    # A department reads its own tickets' titles, never another department's.
    env = client.get("/api/v1/stats/terms?from=2026-03-02&to=2026-03-02", headers=accounts.headers("env1")).json()
    env_terms = {row["term"] for row in env["results"]}
    assert env["basis"] == "tickets"
    assert env["sample"] == 2  # the env ticket and the late env ticket
    assert "化工厂" in env_terms
    assert not {"自来水", "浑浊", "停水"} & env_terms
    assert client.get("/api/v1/stats/terms", headers=accounts.headers("audit1")).status_code == 403


@on_paired_stores
def test_trend_counts_new_items_alerts_and_tickets_per_local_day(client, accounts) -> None:
    from tests.store.builders import make_item

    seed(client)
    client.app.state.ctx.store.upsert([make_item(n) for n in range(5)])
    officer = client.get("/api/v1/stats/trend?days=30", headers=accounts.headers("wang")).json()
    assert officer["total"] == 30
    days = officer["results"]
    assert days[-1]["day"] == "2026-03-02"
    assert days[0]["day"] == "2026-02-01"
    assert (days[-1]["items"], days[-1]["tickets"], days[-1]["alerts"]) == (5, 3, 0)
    assert all((d["items"], d["tickets"]) == (0, 0) for d in days[:-1])
    env = client.get("/api/v1/stats/trend?days=7", headers=accounts.headers("env1")).json()["results"]
    assert env[-1]["tickets"] == 2  # its own two, not water's
    assert all(d["items"] is None for d in env)  # items are not a department's to count
    assert client.get("/api/v1/stats/trend?days=0", headers=accounts.headers("wang")).status_code == 422


def test_refused_input_is_told_in_chinese_without_the_field_code(client, accounts) -> None:
    """The console shows ``detail.message`` as it is: no English field name or English words in front."""
    ids = seed(client)
    env = accounts.headers("env1")
    url = f"/api/v1/tickets/{ids['env']}/actions"
    assert client.post(url, json={"action": "acknowledge", "version": 1}, headers=env).status_code == 200
    early = client.post(
        url,
        json={"action": "request_extension", "note": "需检测", "until": "2026-03-01T18:00:00+08:00", "version": 2},
        headers=env,
    )
    ftp = client.post(
        url,
        json={"action": "respond", "response_type": "online", "response_url": "ftp://example.org/r", "version": 2},
        headers=env,
    )
    bad_status = client.get("/api/v1/tickets?status=bogus", headers=env)
    for answer, field in ((early, "until"), (ftp, "response_url"), (bad_status, "status")):
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert detail["field"] == field  # the code stays for programs
        assert re.match(r"[\u4e00-\u9fff]", detail["message"]), detail["message"]
    assert early.json()["detail"]["message"] == "延期后的时间须晚于现有时限"
    assert ftp.json()["detail"]["message"].startswith("回应链接须为完整的 http:// 或 https:// 网址")
    # Addresses nobody can open were recorded as the public response: a bare scheme, words, a blank inside.
    for unusable in ("https://", "not a url", "http://www.gov.cn/a b.html"):
        answer = client.post(
            url,
            json={"action": "respond", "response_type": "online", "response_url": unusable, "version": 2},
            headers=env,
        )
        assert answer.status_code == 422, (unusable, answer.text)
        assert answer.json()["detail"]["field"] == "response_url"
    assert bad_status.json()["detail"]["message"].startswith("未知的工单状态 'bogus'，可选：")
