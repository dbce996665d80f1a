"""Upgrading a database written by an earlier release: its audit chain and its TOTP secrets.

Issue 11: an audit log written before the HMAC change (plain SHA-256 chain) failed verification at its
first record after upgrading, and TOTP secrets stored in plain text stayed plain until rewritten. The
database here is built at the old revision (Alembic ``0003_users_audit``) and filled the way the old
release wrote it; then the real start-up path (``yuqing init`` / the app) upgrades it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, timedelta
from typing import Any

import pyotp
import pytest
from alembic import command
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from service import clock
from service.app import create_app
from service.audit.models import AuditHead, AuditRecord
from service.audit.service import LEGACY_EVENT, check_chain, compute_hash, record
from service.context import AppContext
from service.db import alembic_config
from service.settings import Settings
from service.upgrade import migrate
from tests.audit.test_audit_log import _drop_guards
from tests.audit.test_audit_tamper import ADMIN, _rechain_without_key, run_cli
from tests.auth.fixtures import PASSWORD, Accounts

OLD_REVISION = "0003_users_audit"


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A database never migrated: each test builds it at the old revision itself."""
    return empty_database_url


GENESIS = "0" * 64


def _old_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The chain function of the release before the HMAC change, as it was."""
    body = {
        "at": row["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "username": row["username"],
        "role": row["role"],
        "event_type": row["event_type"],
        "result": row["result"],
        "address": row["address"],
        "detail": row["detail"],
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _old_database(url: str, legacy_rows: int, key_rows: int = 0, key: bytes = b"") -> Engine:
    """A database at the old revision with ``legacy_rows`` chained the old way; ``key_rows`` more chained with
    HMAC on top (what the previous release, which had the HMAC but no upgrade step, appended)."""
    engine = create_engine(url)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, OLD_REVISION)
    table = AuditRecord.__table__
    prev = GENESIS
    start = clock.now() - timedelta(days=3)
    with engine.begin() as conn:
        for i in range(legacy_rows + key_rows):
            row = {
                "at": start + timedelta(minutes=i),
                "username": "zhang",
                "role": "officer",
                "event_type": "personal_data.reveal",
                "result": "success",
                "address": "10.0.0.8",
                "detail": {"n": i, "item": f"条目{i}"},
                "prev_hash": prev,
            }
            if i < legacy_rows:
                row["hash"] = _old_hash(prev, row)
            else:
                row["hash"] = compute_hash(prev, AuditRecord(**row), key)
            conn.execute(table.insert().values(**row))
            prev = row["hash"]
        conn.execute(text("UPDATE audit_head SET last_hash = :h, appended = :n"), {"h": prev, "n": legacy_rows})
    return engine


def _started(settings: Settings) -> AppContext:
    ctx = AppContext.create(settings)
    migrate(ctx)
    return ctx


@pytest.mark.parametrize("key_rows", [0, 2], ids=["straight-from-old", "after-hmac-release"])
def test_an_old_audit_chain_verifies_as_legacy_after_upgrading_and_tampering_in_it_still_shows(
    app_settings: Settings, frozen, key_rows: int
) -> None:
    from service.audit_key import load_audit_key

    _old_database(app_settings.database_url, 5, key_rows, load_audit_key(app_settings)).dispose()
    ctx = _started(settings=app_settings)
    try:
        with ctx.db.session() as session:
            chain = check_chain(session)
            reanchors = session.execute(select(AuditRecord).where(AuditRecord.event_type == LEGACY_EVENT)).scalars()
            assert [r.id for r in reanchors] == [6 + key_rows], "one signed re-anchor, appended to the chain"
        assert chain.ok, chain
        assert chain.legacy is not None
        assert (chain.legacy.first_id, chain.legacy.last_id, chain.legacy.count) == (1, 5, 5)
        # The chain goes on with HMAC; a second start re-anchors nothing more.
        with ctx.db.session() as session:
            record(session, event="ticket_action", principal_or_username=ADMIN, result="success", detail={})
        migrate(ctx)
        with ctx.db.session() as session:
            assert check_chain(session).ok
            assert session.execute(select(AuditHead)).scalar_one().legacy_last_id == 0

        ok = run_cli(app_settings, "audit", "verify")
        assert ok.returncode == 0, ok.stderr
        assert "verified-legacy" in ok.stdout
        assert "#1–#5" in ok.stdout

        # Tampering inside the legacy segment (what only DDL rights allow) is still caught, at that record.
        _drop_guards(ctx.db)
        with ctx.db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET username = 'someone' WHERE id = 3"))
        with ctx.db.session() as session:
            assert (check_chain(session).ok, check_chain(session).first_bad_id) == (False, 3)
        broken = run_cli(app_settings, "audit", "verify")
        assert broken.returncode == 1
        assert "记录 #3（旧版记录段内）" in broken.stderr

        # Re-chaining the edited legacy records with the old hash ends on another head than the signed one.
        with ctx.db.session() as session:
            rows = list(
                session.execute(select(AuditRecord).where(AuditRecord.id <= 5).order_by(AuditRecord.id)).scalars()
            )
            prev = rows[1].hash
            for row in rows[2:]:
                row.prev_hash = prev
                row.hash = prev = _old_hash(prev, row.__dict__)
        with ctx.db.session() as session:
            assert (check_chain(session).ok, check_chain(session).first_bad_id) == (False, 5)
    finally:
        ctx.close()


def test_the_audit_verify_api_reports_the_legacy_segment(app_settings: Settings, frozen) -> None:
    _old_database(app_settings.database_url, 4).dispose()
    with TestClient(create_app(app_settings)) as client:
        accounts = Accounts(client, frozen)
        accounts.add("shen", "auditor")
        status = client.get("/api/v1/audit/verify", headers=accounts.headers("shen")).json()
    assert status["ok"] is True, status
    assert status["legacy"]["status"] == "verified-legacy"
    assert (status["legacy"]["first_id"], status["legacy"]["last_id"], status["legacy"]["count"]) == (1, 4, 4)


def test_a_chain_rewritten_with_the_old_hash_later_is_not_blessed_as_legacy(ctx_fresh: AppContext) -> None:
    """The attack of the report, after upgrading: re-chain everything without the key, then restart."""
    with ctx_fresh.db.session() as session:
        for i in range(3):
            record(session, event="ticket_action", principal_or_username=ADMIN, result="success", detail={"n": i})
    _drop_guards(ctx_fresh.db)
    _rechain_without_key(ctx_fresh.db)
    migrate(ctx_fresh)  # a restart
    with ctx_fresh.db.session() as session:
        chain = check_chain(session)
        assert not session.execute(select(AuditRecord).where(AuditRecord.event_type == LEGACY_EVENT)).first()
    assert (chain.ok, chain.first_bad_id, chain.legacy) == (False, 1, None)


def test_the_legacy_bound_cannot_be_widened(ctx_fresh: AppContext) -> None:
    with pytest.raises(DBAPIError), ctx_fresh.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_head SET legacy_last_id = 1000"))


@pytest.fixture
def ctx_fresh(app_settings: Settings, frozen):  # type: ignore[no-untyped-def]
    ctx = _started(app_settings)
    yield ctx
    ctx.close()


def test_plaintext_totp_secrets_are_encrypted_at_init_and_still_sign_in(app_settings: Settings, frozen) -> None:
    engine = _old_database(app_settings.database_url, 0)
    secret = pyotp.random_base32()
    hashed = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    now = clock.now()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, password_hash, role, active, totp_secret, failed_logins,"
                " created_at, password_changed_at) VALUES ('root', :h, 'admin', :t, :s, 0, :now, :now)"
            ),
            {"h": hashed, "t": True, "s": secret, "now": now},
        )
    result = run_cli(app_settings, "init")
    assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT totp_secret FROM users")).scalars().all()
    engine.dispose()
    assert len(stored) == 1
    assert stored[0].startswith("gAAAAA"), "a Fernet token, not the plain secret"
    assert secret not in stored[0]

    with TestClient(create_app(app_settings)) as client:
        accounts = Accounts(client, frozen)
        accounts.secrets["root"] = secret
        assert accounts.headers("root")
        wrong = client.post("/api/v1/auth/token", data={"username": "root", "password": PASSWORD, "totp": "000000"})
        assert wrong.status_code in (400, 401), "the secret still gates the sign-in"
