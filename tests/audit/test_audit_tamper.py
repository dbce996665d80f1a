"""A tamper-evident audit trail: keyed chain, append-only table, daily anchors, ``yuqing audit verify``.

Found by an attacker with database access: with the product's own hash function, renaming 6 reveal rows,
deleting one action row and recomputing the chain and head gave ``GET /api/v1/audit/verify`` → ok, and
nothing in the database stopped UPDATE or DELETE on the audit table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from service.audit.anchors import anchors_path, take_anchor
from service.audit.models import AuditHead, AuditRecord
from service.audit.service import purge, record, verify_chain
from service.audit_key import load_audit_key
from service.context import AppContext
from service.db import Database
from service.principal import Principal
from service.settings import Settings
from tests.audit.test_audit_log import _drop_guards
from tests.foundation.conftest import run_cli as run


def run_cli(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    """The real ``yuqing`` on these settings' config dir, data dir and database."""
    env = {"YUQING_DATA_DIR": str(settings.data_dir), "YUQING_DATABASE__URL": settings.database_url}
    return run("--config", str(settings.config_dir), *args, env=env)


ADMIN = Principal(user_id=1, username="root", role="admin", address="10.0.0.9")


@pytest.fixture
def ctx(app_settings: Settings, frozen) -> Iterator[AppContext]:
    context = AppContext.create(app_settings)
    context.db.migrate()
    yield context
    context.close()


def _write(db: Database, n: int, event: str = "personal_data.reveal") -> None:
    with db.session() as session:
        for i in range(n):
            record(session, event=event, principal_or_username=ADMIN, result="success", detail={"n": i})


def _verify(db: Database) -> tuple[bool, int | None]:
    with db.session() as session:
        return verify_chain(session)


def _rechain_without_key(db: Database) -> None:
    """The attack of the report: rewrite rows, then recompute every link and the head with plain SHA-256."""
    with db.session() as session:
        head = session.execute(select(AuditHead)).scalar_one()
        prev = head.anchor_hash
        for row in session.execute(select(AuditRecord).order_by(AuditRecord.id)).scalars():
            body = {
                "at": row.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "username": row.username,
                "role": row.role,
                "event_type": row.event_type,
                "result": row.result,
                "address": row.address,
                "detail": row.detail,
            }
            canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
            row.prev_hash = prev
            row.hash = prev = hashlib.sha256((prev + canonical).encode()).hexdigest()
        head.last_hash = prev


def test_the_database_refuses_update_and_delete_of_audit_rows(ctx: AppContext) -> None:
    _write(ctx.db, 3)
    refused = [
        "UPDATE audit_log SET username = 'nobody' WHERE id = 2",
        "DELETE FROM audit_log WHERE id = 2",
        "DELETE FROM audit_head",
    ]
    if ctx.db.engine.dialect.name == "postgresql":
        refused.append("TRUNCATE audit_log")
    for statement in refused:
        with ctx.db.engine.connect() as conn, pytest.raises(DBAPIError):
            conn.execute(text(statement))
    with ctx.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_head SET anchor_after_id = 1 WHERE id = 1"))  # forward: what a purge does
    with ctx.db.engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("UPDATE audit_head SET anchor_after_id = 0 WHERE id = 1"))
    with ctx.db.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 3


def test_the_retention_purge_still_works_below_the_anchor(ctx: AppContext, frozen) -> None:
    _write(ctx.db, 2)
    frozen.advance(timedelta(days=400))
    _write(ctx.db, 1)
    with ctx.db.session() as session:
        assert purge(session, 365) == 2
    assert _verify(ctx.db) == (True, None)


def test_a_chain_recomputed_without_the_key_does_not_verify(ctx: AppContext) -> None:
    _write(ctx.db, 6)
    _write(ctx.db, 1, event="ticket_action")
    _write(ctx.db, 2)
    _drop_guards(ctx.db)
    with ctx.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET username = 'someone' WHERE event_type = 'personal_data.reveal'"))
        conn.execute(text("DELETE FROM audit_log WHERE event_type = 'ticket_action'"))
    _rechain_without_key(ctx.db)
    ok, first_bad = _verify(ctx.db)
    assert not ok
    assert first_bad == 1


def test_the_key_lives_outside_the_database(app_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    key = load_audit_key(app_settings)
    path = app_settings.data_path("secrets", "audit.key")
    assert path.read_bytes().strip() == key
    assert path.stat().st_mode & 0o077 == 0, "only the owner may read the key"
    assert load_audit_key(app_settings) == key, "the same key on every start"
    monkeypatch.setenv("YUQING_AUDIT_KEY", "k" * 40)
    assert load_audit_key(app_settings) == b"k" * 40


def test_verify_cli_checks_chain_and_anchors_and_names_the_first_bad_row(ctx: AppContext, app_settings, frozen):
    _write(ctx.db, 3)
    with ctx.db.session() as session:
        anchor = take_anchor(session, app_settings)
    assert anchor is not None
    assert anchor.last_id == 3
    assert anchors_path(app_settings).exists()
    ok = run_cli(app_settings, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "审计日志完整" in ok.stdout

    # Someone with the key and DDL rights rewrites record 2 on and re-chains it correctly: only the anchor shows it.
    _drop_guards(ctx.db)
    from service.audit.service import audit_key, compute_hash

    with ctx.db.session() as session:
        key = audit_key(session)
        rows = list(session.execute(select(AuditRecord).order_by(AuditRecord.id)).scalars())
        prev = rows[0].hash
        for row in rows[1:]:
            row.username = "someone"
            row.prev_hash = prev
            row.hash = prev = compute_hash(prev, row, key)
        session.execute(select(AuditHead)).scalar_one().last_hash = prev
    assert _verify(ctx.db) == (True, None), "the chain alone cannot tell"
    broken = run_cli(app_settings, "audit", "verify")
    assert broken.returncode == 1
    assert "#3" in broken.stderr

    with ctx.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET detail = '{}' WHERE id = 2"))
    broken = run_cli(app_settings, "audit", "verify")
    assert broken.returncode == 1
    assert "#2" in broken.stderr, "the first bad row is named"


def test_the_anchor_is_also_an_outbox_notice(ctx: AppContext, app_settings: Settings) -> None:
    from alerting.models import OutboxMessage
    from service.settings import NotificationRoute

    app_settings.notifications.channels = {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/anchor"}}
    app_settings.notifications.routes = [NotificationRoute(kinds=["audit_anchor"], channels=["ops"])]
    _write(ctx.db, 2)
    with ctx.db.session() as session:
        take_anchor(session, app_settings)
    with ctx.db.session() as session:
        notices = session.execute(select(OutboxMessage)).scalars().all()
    assert [n.kind for n in notices] == ["audit_anchor"]
    with ctx.db.session() as session:
        head = session.execute(select(AuditHead)).scalar_one()
    assert head.last_hash in notices[0].body
