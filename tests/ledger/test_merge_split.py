"""并单/拆单 through the API: strictest deadlines, both histories, no second notice, 409 when stale, ledger."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from service.audit.models import AuditRecord
from service.exports.ledger_rows import rows_from_tickets
from service.ledger.config import ledger_config
from service.ledger.monitoring import check_sla as run_sla_check
from service.ledger.service import ItemRef, open_or_attach
from service.store.base import Item
from tests.item_stores import on_paired_stores
from tests.ledger.builders import T0, new_ticket
from tests.ledger.test_ledger_api import Users, accounts, client  # noqa: F401 - fixtures

# ruff: noqa: F811 - pytest fixtures imported above are the test functions' arguments

SHANGHAI_T0 = "2026-03-02T10:00:00+08:00"


def _two_env_tickets(client) -> tuple[int, int]:
    """A normal ticket discovered at T0, and a major one discovered an hour earlier (stricter deadlines)."""
    ctx = client.app.state.ctx
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        a = new_ticket(s, config, 1, policy=config.policy).id
        b = new_ticket(s, config, 2, severity="major", discovered_at=T0 - timedelta(hours=1), policy=config.policy).id
    return a, b


def test_merge_keeps_the_earliest_discovery_the_strictest_deadlines_and_both_histories(client, accounts) -> None:
    a, b = _two_env_tickets(client)
    officer = accounts.headers("zhang")
    before_b = client.get(f"/api/v1/tickets/{b}", headers=officer).json()
    answer = client.post(
        f"/api/v1/tickets/{a}/merge",
        json={"sources": [{"id": b, "version": 1}], "version": 1, "note": "同一事件"},
        headers=officer,
    )
    assert answer.status_code == 200, answer.text
    merged = answer.json()
    assert merged["merged_from"] == [b]
    assert merged["discovered_at"] == "2026-03-02T09:00:00+08:00"
    assert merged["severity"] == "major"
    assert merged["deadlines"] == before_b["deadlines"]  # the major ticket's are the strictest
    assert {i["item_id"] for i in merged["items"]} == {"item-1", "item-2"}
    actions = [(e["action"], e["from_ticket"]) for e in merged["timeline"]]
    assert actions == [("create", None), ("create", b), ("merge", None)]
    assert merged["version"] == 2
    # The merged ticket leaves the queue, refuses actions and points at the one standing for it.
    gone = client.get(f"/api/v1/tickets/{b}", headers=officer).json()
    assert gone["merged_into"] == a
    assert gone["timeline"][-1]["action"] == "merged_into"
    assert [t["id"] for t in client.get("/api/v1/tickets", headers=officer).json()["results"]] == [a]
    refused = client.post(f"/api/v1/tickets/{b}/actions", json={"action": "escalate"}, headers=officer)
    assert refused.status_code == 409
    # Audited, like every ticket action.
    ctx = client.app.state.ctx
    with ctx.db.session() as s:
        events = [r.detail.get("action") for r in s.scalars(select(AuditRecord)) if r.event_type == "ticket_action"]
    assert "merge" in events
    # Later items of the merged ticket's event come to the ticket standing for it.
    with ctx.db.session() as s:
        ticket, created = open_or_attach(
            s, title="转载", severity="normal", department="env", event_id="ev-2", items=[ItemRef(item_id="item-9")]
        )
    assert not created
    assert ticket.id == a
    # The ledger has one row for the event, with a note of the merge.
    with ctx.db.session() as s:
        rows = list(rows_from_tickets(s, T0.date(), T0.date(), None, T0))
    assert [r.ticket_id for r in rows] == [a]
    assert f"并单：含原工单 #{b}" in rows[0].note


def test_merge_refuses_stale_versions_other_departments_and_department_users(client, accounts) -> None:
    a, b = _two_env_tickets(client)
    ctx = client.app.state.ctx
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        water = new_ticket(s, config, 3, department="water", policy=config.policy).id
    officer = accounts.headers("zhang")
    stale = client.post(f"/api/v1/tickets/{a}/merge", json={"sources": [{"id": b, "version": 7}]}, headers=officer)
    assert stale.status_code == 409
    assert stale.json()["detail"]["current_version"] == 1
    stale = client.post(f"/api/v1/tickets/{a}/merge", json={"sources": [{"id": b}], "version": 5}, headers=officer)
    assert stale.status_code == 409
    other = client.post(f"/api/v1/tickets/{a}/merge", json={"sources": [{"id": water}]}, headers=officer)
    assert other.status_code == 422
    dept = client.post(f"/api/v1/tickets/{a}/merge", json={"sources": [{"id": b}]}, headers=accounts.headers("env1"))
    assert dept.status_code == 403
    # Nothing changed.
    assert client.get(f"/api/v1/tickets/{b}", headers=officer).json()["merged_into"] is None


def test_a_deadline_warned_about_before_the_merge_is_not_warned_about_again(client, accounts) -> None:
    a, b = _two_env_tickets(client)
    ctx = client.app.state.ctx
    # The major ticket's acknowledge (2h from 09:00) is warned at 75%: 10:30.
    report = run_sla_check(ctx, T0 + timedelta(minutes=31))
    assert [(n.ticket_id, n.stage, n.level) for n in report.notices] == [(b, "acknowledge", "warning")]
    merged = client.post(f"/api/v1/tickets/{a}/merge", json={"sources": [{"id": b}]}, headers=accounts.headers("zhang"))
    assert merged.status_code == 200
    assert run_sla_check(ctx, T0 + timedelta(minutes=40)).notices == []
    # The deadline itself still breaches once, on the ticket standing for both.
    report = run_sla_check(ctx, T0 + timedelta(hours=1, minutes=1))
    assert [(n.ticket_id, n.stage, n.level) for n in report.notices] == [(a, "acknowledge", "breach")]


@on_paired_stores
def test_split_moves_an_item_to_a_new_ticket_counting_from_its_discovery(client, accounts, frozen) -> None:
    ctx = client.app.state.ctx
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        a = new_ticket(s, config, 1, policy=config.policy).id
    # A second item reaches the same ticket three hours later (it was wrongly grouped).
    frozen.set(T0 + timedelta(hours=3))
    later = Item(id="item-7", source="demo-12345", channel="hotline", title="另一件事", fetched_at=frozen.now())
    ctx.store.upsert([later])
    with ctx.db.session() as s:
        open_or_attach(s, title="x", severity="normal", department="env", event_id="ev-1", items=[later])
    frozen.set(T0 + timedelta(hours=5))
    officer = accounts.headers("zhang")
    version = client.get(f"/api/v1/tickets/{a}", headers=officer).json()["version"]
    stale = client.post(
        f"/api/v1/tickets/{a}/split", json={"item_id": "item-7", "version": version + 1}, headers=officer
    )
    assert stale.status_code == 409
    answer = client.post(
        f"/api/v1/tickets/{a}/split",
        json={"item_id": "item-7", "version": version, "note": "不是同一事件"},
        headers=officer,
    )
    assert answer.status_code == 200, answer.text
    old, new = answer.json()["ticket"], answer.json()["new_ticket"]
    assert [i["item_id"] for i in old["items"]] == ["item-1"]
    assert [i["item_id"] for i in new["items"]] == ["item-7"]
    assert new["split_from"] == a
    assert new["discovered_at"] == "2026-03-02T13:00:00+08:00"  # the item's own discovery
    assert new["deadlines"]["acknowledge"] == "2026-03-02T17:00:00+08:00"  # normal: 4h from then
    assert new["title"] == "另一件事"
    assert old["timeline"][-1]["action"] == "split"
    # The item's later reposts follow it to its new ticket.
    assert ctx.store.get("item-7").event_id == new["event_id"]
    with ctx.db.session() as s:
        ticket, created = open_or_attach(
            s, title="转载", severity="normal", department="env", event_id=new["event_id"], items=[ItemRef("item-8")]
        )
    assert (ticket.id, created) == (new["id"], False)
    with ctx.db.session() as s:
        rows = list(rows_from_tickets(s, T0.date(), T0.date(), None, T0 + timedelta(hours=5)))
    assert f"拆单：拆自工单 #{a}" in next(r for r in rows if r.ticket_id == new["id"]).note
    # A ticket of one item has nothing to split.
    assert client.post(f"/api/v1/tickets/{a}/split", json={"item_id": "item-1"}, headers=officer).status_code == 422
