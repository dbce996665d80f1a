"""可能是同一事件, decided when items are matched: stored, pushed to the ticket's viewers, never merged silently;
and what was sent about an item stays sent when the item is split off into a ticket of its own."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from alerting.models import OutboxMessage
from service.feed.models import Alert
from service.feed.service import FEED_ALERTS
from service.items.duplicates import assign_events
from service.ledger.models import Ticket, TicketSuggestion
from service.ledger.monitoring import check_sla
from service.ledger.related import backfill_recent
from service.matching.engine import MatchingEngine
from service.settings import PushPolicy
from tests.items.test_reposts import ORIGINAL, ORIGINAL_TITLE, _news
from tests.matching.builders import item
from tests.matching.test_alert_push import _route_everything

EDU = (
    "departments:\n  - id: edu\n    name: 市教育局\n    rules:\n"
    "      - id: edu-training\n        expr: '培训机构 AND (退费 OR 暴雷 OR 跑路 OR 退还)'\n        severity: major\n"
)


def _ticket_of(ctx, item_id: str, department: str = "env") -> int:
    with ctx.db.session() as s:
        return s.execute(
            select(Alert.ticket_id).where(Alert.item_id == item_id, Alert.department == department)
        ).scalar_one()


def _complaint_and_report():
    hotline = item(
        1, "柳岸社区化工厂夜里异味", "河西区柳岸社区东边的化工厂每天夜里排放刺鼻异味，居民无法开窗，请尽快查处。"
    )
    news = item(
        2,
        "多名居民反映化工园区异味扰民",
        "记者昨日在河西区柳岸社区走访，多名居民说附近化工厂傍晚以后气味明显，环保部门已派人取样。",
        channel="media",
        source="qc-daily",
    )
    return hotline, news


def test_a_suggestion_is_stored_when_matched_and_pushed_to_the_stream(client, accounts) -> None:
    ctx = client.app.state.ctx
    hotline, news = _complaint_and_report()
    ctx.store.upsert([hotline])
    MatchingEngine(ctx).run()
    accounts.add("zhang", "officer")
    accounts.add("env-user", "department", department="env")
    accounts.add("water-user", "department", department="water")
    ctx.store.upsert([news])
    pushed: list[dict] = []
    started = threading.Event()

    def match_when_listening() -> None:
        started.wait(30)
        MatchingEngine(ctx).run()

    worker = threading.Thread(target=match_when_listening)
    worker.start()
    try:
        with client.stream("GET", "/api/v1/alerts/stream", headers=accounts.headers("env-user")) as response:
            event = None
            keepalives = 0
            for line in response.iter_lines():
                if line.startswith("retry:"):
                    started.set()
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "related":
                    pushed.append(json.loads(line[6:]))
                    if len(pushed) == 2:
                        break
                elif line.startswith(":"):
                    keepalives += 1
                    # Keep-alives come every 15 s: this only bounds a failure, generously for a loaded CI box.
                    assert keepalives < 7, "no suggestion pushed within 90 s"
    finally:
        started.set()
        worker.join(60)
    first, second = _ticket_of(ctx, hotline.id), _ticket_of(ctx, news.id)
    # Both tickets' viewers learn of it: the older ticket gets the new one, and the other way round.
    assert {(p["ticket_id"], p["other_id"]) for p in pushed} == {(first, second), (second, first)}
    assert all(p["kind"] == "related" and p["reason"].startswith("同在柳岸社区") for p in pushed)
    # Stored when matched, before anyone read the ticket; reading shows what was stored.
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TicketSuggestion)) == 2
    body = client.get(f"/api/v1/tickets/{first}", headers=accounts.headers("zhang")).json()
    assert [(r["ticket_id"], r["kind"]) for r in body["related"]] == [(second, "related")]
    # Another department's stream does not carry them.
    with ctx.db.session() as s:
        from service.ledger.related import suggestions_after
        from service.principal import Principal

        water = Principal(user_id=9, username="water-user", role="department", department="water", address="x")
        assert suggestions_after(s, water, 0) == []


def test_a_suggestion_made_while_disconnected_arrives_when_the_stream_resumes(client, accounts) -> None:
    ctx = client.app.state.ctx
    hotline, news = _complaint_and_report()
    ctx.store.upsert([hotline])
    MatchingEngine(ctx).run()
    accounts.add("env-user", "department", department="env")
    headers = accounts.headers("env-user")

    def events(extra: dict[str, str], wanted: int) -> list[tuple[str, str, dict]]:
        out: list[tuple[str, str, dict]] = []
        event_id = event = ""
        keepalives = 0
        with client.stream("GET", "/api/v1/alerts/stream", headers=headers | extra) as response:
            for line in response.iter_lines():
                if line.startswith(":"):
                    keepalives += 1
                    # Keep-alives come every 15 s: this only bounds a failure, generously for a loaded CI box.
                    assert keepalives < 5, f"only {len(out)} of {wanted} events within 60 s"
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    out.append((event_id, event, json.loads(line[6:])))
                    if len(out) == wanted:
                        break
        return out

    # The browser had seen the first alert (resume point "alert:suggestion"), then lost the connection.
    (seen_id, kind, first_alert), *_ = events({"Last-Event-ID": "0:0"}, 1)
    assert kind == "alert"
    assert seen_id == f"{first_alert['id']}:0"
    # While it was away the news report was matched: a new alert and a suggestion on both tickets.
    ctx.store.upsert([news])
    MatchingEngine(ctx).run()
    resumed = events({"Last-Event-ID": seen_id}, 3)
    assert [kind for _, kind, _ in resumed] == ["alert", "related", "related"]
    assert resumed[0][2]["item_id"] == news.id
    # Each id names both resume points, so the next reconnect misses neither kind of event.
    last_alert = resumed[0][2]["id"]
    assert [i for i, _, _ in resumed] == [f"{last_alert}:0", f"{last_alert}:1", f"{last_alert}:2"]


def test_tickets_opened_before_suggestions_existed_get_them_at_init(client, accounts) -> None:
    ctx = client.app.state.ctx
    hotline, news = _complaint_and_report()
    ctx.store.upsert([hotline, news])
    MatchingEngine(ctx).run()
    first, second = _ticket_of(ctx, hotline.id), _ticket_of(ctx, news.id)
    # As after an upgrade from before suggestions were stored: two related open tickets, no suggestion rows.
    with ctx.db.session() as s:
        s.execute(TicketSuggestion.__table__.delete())
    accounts.add("zhang", "officer")
    assert client.get(f"/api/v1/tickets/{first}", headers=accounts.headers("zhang")).json()["related"] == []

    with ctx.db.session() as s:
        assert backfill_recent(s, ctx.store, FEED_ALERTS) == 2
    body = client.get(f"/api/v1/tickets/{first}", headers=accounts.headers("zhang")).json()
    assert [(r["ticket_id"], r["kind"]) for r in body["related"]] == [(second, "related")]
    with ctx.db.session() as s:
        assert backfill_recent(s, ctx.store, FEED_ALERTS) == 0  # tickets that have suggestions are not read again


def _excerpts() -> tuple[str, str]:
    sentences = re.findall(r"[^。]+。", ORIGINAL)
    n = len(sentences)
    keep = (n * 11 + 19) // 20  # 55 %
    return "".join(sentences[:keep]), "".join(sentences[n - keep :])


def test_a_repost_of_two_tickets_suggests_merging_them_and_merges_nothing(client, accounts) -> None:
    ctx = client.app.state.ctx
    (Path(ctx.settings.config_dir) / "departments.yaml").write_text(EDU, encoding="utf-8")
    head, tail = _excerpts()
    # Two outlets each excerpted another half of one report, crawled before the report itself.
    for n, (title, text) in enumerate([("培训机构暴雷 家长急了", head), ("培训机构退费难 家长盼解决", tail)], 1):
        grouped, _ = assign_events(ctx.store, [_news(n, title, text, source=f"portal{n}")])
        ctx.store.upsert(grouped)
    MatchingEngine(ctx).run()
    x, y = (
        _ticket_of(ctx, _news(1, "", "", source="portal1").id, "edu"),
        _ticket_of(ctx, _news(2, "", "", source="portal2").id, "edu"),
    )
    assert x != y  # the excerpts share too little to be one event by themselves
    report = _news(3, ORIGINAL_TITLE, ORIGINAL)
    grouped, _ = assign_events(ctx.store, [report])
    ctx.store.upsert(grouped)
    MatchingEngine(ctx).run()
    with ctx.db.session() as s:
        open_tickets = s.scalars(select(Ticket.id).where(Ticket.department == "edu", Ticket.merged_into.is_(None)))
        assert sorted(open_tickets) == sorted([x, y])  # never merged without an officer
    accounts.add("zhang", "officer")
    for one, other in ((x, y), (y, x)):
        body = client.get(f"/api/v1/tickets/{one}", headers=accounts.headers("zhang")).json()
        same = [r for r in body["related"] if r["kind"] == "same_event"]
        assert [r["ticket_id"] for r in same] == [other]
        assert "可能是同一事件" in same[0]["reason"]
        assert ORIGINAL_TITLE[:10] in same[0]["reason"]  # the reason names the item linking them
    # The officer merges; the suggestion is then gone.
    merged = client.post(f"/api/v1/tickets/{x}/merge", json={"sources": [{"id": y}]}, headers=accounts.headers("zhang"))
    assert merged.status_code == 200, merged.text
    assert merged.json()["related"] == []


def test_a_split_off_item_keeps_its_sent_notices_on_its_new_ticket(client, accounts, frozen) -> None:
    ctx = client.app.state.ctx
    _route_everything(ctx)
    ctx.settings.alerts.push = PushPolicy(mode="immediate")
    start = frozen.now()
    # Two complaints wrongly grouped into one event: one ticket, two alerts, both pushed.
    first = item(1, "化工厂排污", "河西区化工厂夜里排污", event_id="ev-wrong")
    second = item(2, "化工厂异味", "城东区另一家化工厂白天异味", event_id="ev-wrong")
    ctx.store.upsert([first, second])
    MatchingEngine(ctx).run()
    ticket = _ticket_of(ctx, first.id)
    assert _ticket_of(ctx, second.id) == ticket

    def sent() -> list[str]:
        with ctx.db.session() as s:
            return sorted(s.scalars(select(OutboxMessage.dedupe_key)))

    pushes = sent()
    assert len([k for k in pushes if k.startswith("alert:")]) == 2
    # The major ticket's acknowledge deadline (2 h) is warned about at 75 %.
    frozen.set(start + timedelta(minutes=95))
    assert [(n.ticket_id, n.level) for n in check_sla(ctx).notices] == [(ticket, "warning")]
    warned = sent()
    frozen.set(start + timedelta(minutes=100))
    accounts.add("zhang", "officer")
    answer = client.post(
        f"/api/v1/tickets/{ticket}/split",
        json={"item_id": second.id, "note": "不是同一事件"},
        headers=accounts.headers("zhang"),
    )
    assert answer.status_code == 200, answer.text
    new = answer.json()["new_ticket"]
    # The new ticket knows what was sent about its item, and owns the item's alert.
    notified = new["timeline"][0]["detail"]["notified"]
    assert [n.get("alert") for n in notified if "alert" in n] == [
        a for a in [_alert_id(ctx, second.id)] if a is not None
    ]
    assert any(n.get("sla") == "acknowledge" and n.get("level") == "warning" for n in notified)
    assert _ticket_of(ctx, second.id) == new["id"]
    # Nothing is sent again: not by the split, not by a later matching run, not by the SLA monitor.
    MatchingEngine(ctx).run()
    frozen.set(start + timedelta(minutes=110))
    assert check_sla(ctx).notices == []
    assert sent() == warned


def _alert_id(ctx, item_id: str) -> int | None:
    with ctx.db.session() as s:
        return s.scalar(select(Alert.id).where(Alert.item_id == item_id))
