"""One unit of work per request: refusals and reveals are audited in the request's own session, at once.

The clock moves between requests, as it does in a real office: every signed-in request then restarts the
session's idle clock, a write. Before the fix that write held SQLite's lock while the audit record waited for
it in a second session: 30 s per refused action, `could not audit ... database is locked`, the record lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from loguru import logger
from sqlalchemy import select

from service.audit.models import AuditRecord
from service.feed.models import Alert
from service.ledger.config import ledger_config
from tests.auth.fixtures import Accounts
from tests.ledger.builders import new_ticket

# Far above any honest answer on a loaded machine, far below the 30 s the self-inflicted lock wait took.
ANSWER_WITHIN = 10.0


@pytest.fixture
def errors() -> Iterator[list[str]]:
    """Error lines the product logs during the test."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="ERROR")
    yield lines
    logger.remove(sink)


def _rows(client, event: str) -> list[tuple[str | None, str, dict]]:
    with client.app.state.ctx.db.session() as session:
        rows = session.execute(
            select(AuditRecord.username, AuditRecord.result, AuditRecord.detail)
            .where(AuditRecord.event_type == event)
            .order_by(AuditRecord.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _timed(frozen, call):
    frozen.advance(timedelta(minutes=1))  # real time passes: the request restarts its idle clock (a write)
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def test_refused_ticket_actions_answer_at_once_and_are_audited(client, accounts: Accounts, frozen, errors) -> None:
    ctx = client.app.state.ctx
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, 1, policy=config.policy).id
    for name, role, department in (("env1", "department", "env"), ("water1", "department", "water")):
        accounts.add(name, role, department)
    accounts.add("wang", "leader")
    env, water, leader = (accounts.headers(u) for u in ("env1", "water1", "wang"))
    url = f"/api/v1/tickets/{ticket_id}/actions"
    refusals = [
        (water, {"action": "handle", "result": "x", "version": 1}, 404),
        (env, {"action": "acknowledge", "version": 7}, 409),
        (env, {"action": "close", "version": 1}, 409),
        (env, {"action": "request_extension", "note": "需检测", "version": 1}, 422),
        (leader, {"action": "escalate", "version": 1}, 403),
    ]
    for headers, body, status in refusals:
        response, took = _timed(frozen, lambda h=headers, b=body: client.post(url, json=b, headers=h))
        assert response.status_code == status, response.text
        assert took < ANSWER_WITHIN, f"{body['action']} answered {status} after {took:.1f} s"
    assert [(u, r) for u, r, _ in _rows(client, "ticket_action")] == [
        ("water1", "denied"),
        ("env1", "failure"),
        ("env1", "failure"),
        ("env1", "failure"),
    ]
    assert [(u, r, d["path"]) for u, r, d in _rows(client, "authz_denied")] == [("wang", "denied", url)]
    # The refused requests changed nothing, and the one that follows them still works.
    ok, _ = _timed(frozen, lambda: client.post(url, json={"action": "acknowledge", "version": 1}, headers=env))
    assert ok.status_code == 200, ok.text
    assert [r for _, r, _ in _rows(client, "ticket_action")][-1] == "success"
    assert errors == []


def test_an_admin_reading_personal_data_is_audited_with_the_read(client, accounts: Accounts, frozen, errors) -> None:
    ctx = client.app.state.ctx
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, 1, title="市民13812345678反映化工厂异味", policy=config.policy).id
    accounts.add("root", "admin")
    admin = accounts.headers("root")
    detail, took = _timed(frozen, lambda: client.get(f"/api/v1/tickets/{ticket_id}", headers=admin))
    assert detail.json()["title"] == "市民13812345678反映化工厂异味"
    assert took < ANSWER_WITHIN
    listing, took = _timed(frozen, lambda: client.get("/api/v1/tickets", headers=admin))
    assert "13812345678" in listing.text
    assert took < ANSWER_WITHIN
    reveals = _rows(client, "personal_data.reveal")
    assert [(u, d["path"]) for u, _, d in reveals] == [
        ("root", f"/api/v1/tickets/{ticket_id}"),
        ("root", "/api/v1/tickets"),
    ]
    # A refused read shows nothing, so it reveals nothing.
    missing, _ = _timed(frozen, lambda: client.get("/api/v1/tickets/999999", headers=admin))
    assert missing.status_code == 404
    assert len(_rows(client, "personal_data.reveal")) == 2
    assert errors == []


def test_an_admin_watching_the_alert_stream_is_audited(client, accounts: Accounts, frozen, errors) -> None:
    """What the live feed sends an admin unmasked is audited too, poll by poll, not only plain answers."""
    ctx = client.app.state.ctx
    accounts.add("root", "admin")
    admin = accounts.headers("root")
    title = "市民13812345678反映化工厂异味"
    with ctx.db.session() as s:
        s.add(
            Alert(
                item_id="item-1",
                department="env",
                rule_ids=["env-pollution"],
                severity="major",
                created_at=frozen.now(),
                title=title,
                snippets=[],
                source="demo-12345",
                channel="hotline",
            )
        )
    seen = ""
    with client.stream("GET", "/api/v1/alerts/stream", params={"after": 0}, headers=admin) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen = line
                break
    assert title in seen
    reveals = _rows(client, "personal_data.reveal")
    assert [(u, d["path"]) for u, _, d in reveals] == [("root", "/api/v1/alerts/stream")]
    assert errors == []
