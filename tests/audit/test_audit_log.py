"""The audit log: a hash chain that shows tampering, retention of at least 180 days, auditors only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text

from service import context
from service.audit.service import RetentionTooShort, list_records, purge, record, verify_chain
from service.config_files import ConfigError
from service.context import AppContext
from service.db import Database
from service.principal import Principal
from service.settings import SecuritySettings, Settings, load_settings
from tests.auth.fixtures import Accounts

OFFICER = Principal(user_id=1, username="zhang", role="officer", address="10.0.0.8")


@pytest.fixture
def db(database_url: str, frozen) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def _write(db: Database, n: int) -> None:
    with db.session() as session:
        for i in range(n):
            record(session, event="ticket_action", principal_or_username=OFFICER, result="success", detail={"n": i})


def _drop_guards(db: Database) -> None:
    """What only an attacker with DDL rights on the database can do: switch off the append-only triggers."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
        else:
            for name in ("audit_log_no_update", "audit_log_no_delete", "audit_head_anchor_forward"):
                conn.execute(text(f"DROP TRIGGER {name}"))


def _verify(db: Database) -> tuple[bool, int | None]:
    with db.session() as session:
        return verify_chain(session)


def test_the_chain_verifies_and_shows_an_edited_row(db: Database) -> None:
    _write(db, 5)
    assert _verify(db) == (True, None)
    _drop_guards(db)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET username = 'li' WHERE id = 3"))
    assert _verify(db) == (False, 3)


def test_an_edit_that_recomputes_its_own_hash_still_breaks_the_next_link(db: Database) -> None:
    _write(db, 4)
    _drop_guards(db)
    with db.session() as session:
        row = list_records(session)[0][1]
        row.detail = {"n": 99}
        from service.audit.service import audit_key, compute_hash

        row.hash = compute_hash(row.prev_hash, row, audit_key(session))
    assert _verify(db) == (False, 3)


def test_deleted_rows_are_noticed_in_the_middle_and_at_the_end(db: Database) -> None:
    _write(db, 5)
    _drop_guards(db)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 5"))
    assert _verify(db) == (False, 4), "a missing tail is reported at the last remaining record"
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 2"))
    assert _verify(db) == (False, 3)


def test_records_keep_who_what_where_and_when(db: Database, frozen) -> None:
    with db.session() as session:
        record(session, event="login", principal_or_username="ghost", result="failure", address="1.2.3.4")
        record(session, event="ticket_action", principal_or_username=OFFICER, result="success", detail={"id": 7})
    with db.session() as session:
        rows, total = list_records(session)
        later, _ = list_records(session, after=rows[0].id)
    assert total == 2
    assert [(r.username, r.role, r.event_type, r.result, r.address) for r in rows] == [
        ("ghost", None, "login", "failure", "1.2.3.4"),
        ("zhang", "officer", "ticket_action", "success", "10.0.0.8"),
    ]
    assert rows[0].at == frozen.now()
    assert [r.detail for r in later] == [{"id": 7}]


def test_purge_keeps_the_retention_period_and_the_chain_verifiable(db: Database, frozen) -> None:
    _write(db, 2)  # day 0
    frozen.advance(timedelta(days=200))
    _write(db, 2)  # day 200
    frozen.advance(timedelta(days=200))
    _write(db, 1)  # day 400
    with db.session() as session:
        assert purge(session, 365) == 2
    with db.session() as session:
        rows, _ = list_records(session)
    assert [r.event_type for r in rows] == ["ticket_action"] * 3 + ["audit_purge"]
    assert rows[-1].detail["deleted"] == 2
    assert _verify(db) == (True, None)
    with db.session() as session:
        assert purge(session, 180) == 2
    assert _verify(db) == (True, None)
    _drop_guards(db)
    with db.engine.begin() as conn:
        first = conn.execute(text("SELECT MIN(id) FROM audit_log")).scalar_one()
        conn.execute(text(f"UPDATE audit_log SET prev_hash = '{'0' * 64}' WHERE id = {first}"))
    assert _verify(db) == (False, first), "the first remaining record is anchored, not trusted"


def test_retention_below_180_days_is_refused(db: Database, tmp_path: Path) -> None:
    with db.session() as session, pytest.raises(RetentionTooShort):
        purge(session, 179)
    with pytest.raises(ValidationError):
        SecuritySettings(audit_retention_days=90)
    (tmp_path / "settings.yaml").write_text("security:\n  audit_retention_days: 90\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"security\.audit_retention_days"):
        load_settings(tmp_path)


def test_the_scheduled_purge_follows_the_setting(app_settings: Settings, frozen) -> None:
    from service.audit.scheduled import purge_old_records

    app_settings.security.audit_retention_days = 200
    ctx = AppContext.create(app_settings)
    ctx.db.migrate()
    _write(ctx.db, 1)
    frozen.advance(timedelta(days=199))
    context.set_current(ctx)
    try:
        purge_old_records()
        with ctx.db.session() as session:
            assert [r.event_type for r in list_records(session)[0]] == ["ticket_action"]
        frozen.advance(timedelta(days=2))
        purge_old_records()
        with ctx.db.session() as session:
            assert [r.event_type for r in list_records(session)[0]] == ["audit_purge"]
    finally:
        context.set_current(None)
        ctx.close()


def test_only_auditors_read_the_log(client: TestClient, accounts: Accounts) -> None:
    accounts.add("audit", "auditor")
    accounts.add("root", "admin")
    accounts.add("zhang", "officer")
    auditor = accounts.headers("audit")
    for user in ("root", "zhang"):
        assert client.get("/api/v1/audit", headers=accounts.headers(user)).status_code == 403
    with client.app.state.ctx.db.session() as session:
        record(session, event="export", principal_or_username=OFFICER, result="success", detail={"to": "13812345678"})

    page = client.get("/api/v1/audit", params={"size": 3}, headers=auditor).json()
    assert [(r["event_type"], r["username"]) for r in page["results"]] == [
        ("login", "audit"),
        ("login", "root"),
        ("authz_denied", "root"),
    ]
    rest = client.get("/api/v1/audit", params={"after": page["results"][-1]["id"]}, headers=auditor).json()
    assert [(r["event_type"], r["username"], r["result"]) for r in rest["results"]] == [
        ("login", "zhang", "success"),
        ("authz_denied", "zhang", "denied"),
        ("export", "zhang", "success"),
    ]
    assert rest["results"][-1]["detail"] == {"to": "138****5678"}, "auditors see masked personal data"
    assert page["total"] == 6
    assert page["results"][0]["at"] == "2026-11-23T09:00:00+08:00"
    assert client.get("/api/v1/audit/verify", headers=auditor).json() == {
        "ok": True,
        "first_bad_id": None,
        "legacy": None,
    }
    assert client.delete("/api/v1/audit", headers=auditor).status_code == 405
    assert client.put("/api/v1/audit", headers=auditor).status_code == 405


def test_concurrent_writers_keep_one_chain(db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def write(worker: int) -> None:
        for i in range(8):
            with db.session() as session:
                record(
                    session,
                    event="ticket_action",
                    principal_or_username=f"w{worker}",
                    result="success",
                    detail={"i": i},
                )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    with db.session() as session:
        assert list_records(session)[1] == 32
    assert _verify(db) == (True, None)


def test_a_reversed_date_range_is_refused_not_answered_empty(client: TestClient, accounts: Accounts) -> None:
    accounts.add("audit", "auditor")
    accounts.add("zhang", "officer")
    auditor, officer = accounts.headers("audit"), accounts.headers("zhang")
    same_day = client.get("/api/v1/audit", params={"from": "2026-11-23", "to": "2026-11-23"}, headers=auditor)
    assert same_day.status_code == 200
    assert same_day.json()["total"] >= 2  # both logins of the (frozen) day: one day is a range, not a reversal
    reversed_range = {"from": "2026-11-24", "to": "2026-11-22"}
    answer = client.get("/api/v1/audit", params=reversed_range, headers=auditor)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]["message"] == (
        "开始日期（from）2026-11-24 晚于结束日期（to）2026-11-22，请对调两个日期"
    )
    times = {"from": "2026-11-23T10:00:00+08:00", "to": "2026-11-23T09:00:00+08:00"}
    assert client.get("/api/v1/audit", params=times, headers=auditor).status_code == 422
    # Every list the console filters by date checks its range the same way.
    for path in ("/api/v1/tickets", "/api/v1/items", "/api/v1/stats", "/api/v1/stats/regions", "/api/v1/stats/terms"):
        refused = client.get(path, params=reversed_range, headers=officer)
        assert refused.status_code == 422, (path, refused.text)
        assert "晚于结束日期" in refused.json()["detail"]["message"], path
        assert client.get(path, params={"from": "2026-11-22", "to": "2026-11-24"}, headers=officer).status_code == 200
