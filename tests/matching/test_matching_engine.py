"""Stored items become alerts and tickets: once each, across restarts, one ticket per event."""

from __future__ import annotations

from sqlalchemy import func, select

from alerting.models import OutboxMessage
from service.context import AppContext
from service.feed.models import Alert
from service.ledger import related
from service.ledger.models import Ticket
from service.matching.engine import MatchingEngine
from tests.matching.builders import forget_matched, item


def _ctx(client) -> AppContext:
    return client.app.state.ctx


def _count(ctx: AppContext, model) -> int:
    with ctx.db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_hits_become_alerts_and_tickets(client) -> None:
    ctx = _ctx(client)
    ctx.store.upsert(
        [
            item(1, "化工厂排污", "河边化工厂夜里排污，异味很重，电话13812345678"),
            item(2, "化工厂招聘", "化工厂招聘操作工，排污处理岗位"),
            item(3, "河西区积水", "暴雨后河西区道路积水，附近工地噪音"),
            item(4, "天气预报", "明天晴"),
        ]
    )
    report = MatchingEngine(ctx).run()
    assert report.items == 4
    assert report.alerts == 3  # item 1 → env; item 3 → water and env (noise)
    assert report.tickets_created == 3
    with ctx.db.session() as session:
        alerts = {(a.item_id, a.department): a for a in session.execute(select(Alert)).scalars()}
        first = alerts[(item(1, "").id, "env")]
        assert first.rule_ids == ["env-pollution"]
        assert first.severity == "major"
        assert any(h["term"] == "化工厂" for s in first.snippets for h in s["highlights"])
        both = alerts[(item(3, "").id, "env")]
        assert both.severity == "minor"
        ticket = session.get(Ticket, first.ticket_id)
        assert ticket.department == "env"
        assert ticket.severity == "major"
        assert ticket.discovered_at == ctx.store.get(item(1, "").id).stored_at
        # The push leaves the system: the phone number is masked in it.
        bodies = [m.body for m in session.execute(select(OutboxMessage)).scalars()]
        assert all("13812345678" not in b for b in bodies)
    # Nothing is matched twice.
    assert MatchingEngine(ctx).run().items == 0


def test_reposts_of_one_event_attach_to_one_ticket(client) -> None:
    ctx = _ctx(client)
    ctx.store.upsert([item(10, "化工厂排污", "化工厂排污严重", event_id="ev-1")])
    MatchingEngine(ctx).run()
    ctx.store.upsert(
        [item(11, "转载：化工厂排污", "化工厂排污严重", event_id="ev-1", source="demo-news", channel="media")]
    )
    report = MatchingEngine(ctx).run()
    assert report.tickets_created == 0
    assert report.tickets_attached == 1
    with ctx.db.session() as session:
        tickets = session.execute(select(Ticket)).scalars().all()
        assert len(tickets) == 1
        assert {ti.item_id for ti in tickets[0].items} == {item(10, "").id, item(11, "", source="demo-news").id}
    assert _count(ctx, Alert) == 2  # one alert per item and department


def test_the_ticket_shows_how_many_items_and_sources(client, accounts) -> None:
    ctx = _ctx(client)
    ctx.store.upsert([item(10, "化工厂排污", "化工厂排污严重", event_id="ev-1")])
    ctx.store.upsert(
        [item(11, "转载：化工厂排污", "化工厂排污严重", event_id="ev-1", source="demo-news", channel="media")]
    )
    MatchingEngine(ctx).run()
    accounts.add("officer1", "officer")
    listed = client.get("/api/v1/tickets", headers=accounts.headers("officer1")).json()["results"]
    assert [(t["item_count"], t["source_count"]) for t in listed] == [(2, 2)]


def test_a_crash_between_commit_and_checkpoint_duplicates_nothing(client) -> None:
    ctx = _ctx(client)
    ctx.store.upsert([item(20, "化工厂异味", "化工厂异味扰民")])
    MatchingEngine(ctx).run()
    # Simulate the process dying after the alert was committed but before the item was checkpointed.
    forget_matched(ctx.store)
    restarted = AppContext.create(ctx.settings)
    try:
        report = MatchingEngine(restarted).run()
    finally:
        restarted.close()
    assert report.items == 1
    assert report.alerts == 0
    assert report.tickets_created == 0
    assert _count(ctx, Alert) == 1
    assert _count(ctx, Ticket) == 1


def test_a_rule_change_is_picked_up_without_restart(client, accounts) -> None:
    ctx = _ctx(client)
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")
    engine = MatchingEngine(ctx)
    ctx.store.upsert([item(30, "垃圾清运不及时", "小区垃圾堆积")])
    assert engine.run().alerts == 0
    created = client.post(
        "/api/v1/rules",
        json={"id": "env-garbage", "department": "env", "expr": "垃圾 AND (堆积 OR 清运)", "severity": "normal"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    ctx.store.upsert([item(31, "垃圾又堆积了", "楼下垃圾堆积三天")])
    report = engine.run()
    assert report.alerts == 1


def test_a_burst_is_written_in_a_few_statements_not_per_hit(client) -> None:
    """A burst of 150 hitting items: the ledger writes are bulk (per table per batch), not per hit."""
    from sqlalchemy import event

    ctx = _ctx(client)
    ctx.store.upsert([item(1000 + n, f"化工厂排污{n}", f"第{n}号化工厂夜里排污，附近噪音") for n in range(150)])
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    engine = ctx.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        report = MatchingEngine(ctx).run()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert report.alerts == 150  # env-pollution and env-noise hit: one alert per (item, department)
    assert report.tickets_created == 150
    # One-at-a-time wrote at least 5 statements per hit (1,500 here); a batch needs a few per table.
    assert len(statements) < 60, len(statements)
    assert _count(ctx, Alert) == 150


def test_a_burst_has_every_alert_committed_before_same_event_is_decided(client) -> None:
    """The alerts of all batches go on the stream first; 可能是同一事件 (half of a burst's time) comes after."""
    ctx = _ctx(client)
    ctx.store.upsert([item(300 + n, f"化工厂排污{n}", f"第{n}号化工厂夜里排污，异味很重") for n in range(6)])
    engine = MatchingEngine(ctx)
    committed_at_first_decision: list[int] = []
    decide = engine._suggest

    def deciding(*args) -> None:
        committed_at_first_decision.append(_count(ctx, Alert))
        decide(*args)

    engine._suggest = deciding  # type: ignore[method-assign]
    report = engine.run(batch_size=2)  # three batches
    assert report.alerts == 6
    # Before: the first batch's suggestions were decided with only its own 2 alerts committed.
    assert committed_at_first_decision[0] == 6
    assert len(committed_at_first_decision) == 3  # still decided for every batch
    assert MatchingEngine(ctx).run().items == 0  # every item marked matched once decided


def test_a_burst_segments_each_tickets_places_once(client, monkeypatch) -> None:
    """The open tickets are candidates of every batch of a burst: their places (jieba) are read once per run."""

    ctx = _ctx(client)
    ctx.store.upsert(
        [item(400 + n, f"河西区化工厂排污{n}", f"河西区柳岸社区第{n}号化工厂夜里排污，异味很重") for n in range(6)]
    )
    segmented: list[tuple[str, ...]] = []
    places = related._places

    def counting(items):
        items = list(items)
        segmented.append(tuple(i.id for i in items))
        return places(items)

    monkeypatch.setattr(related, "_places", counting)
    report = MatchingEngine(ctx).run(batch_size=2)  # three batches, six tickets of one department
    assert report.tickets_created == 6
    assert len(segmented) == 6, segmented  # before: a ticket again in each batch it was a candidate of
    with ctx.db.session() as session:
        assert session.execute(select(func.count()).select_from(related.TicketSuggestion)).scalar_one() > 0
