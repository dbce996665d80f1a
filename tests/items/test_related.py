"""可能是同一事件: a ticket shows open tickets of its department about the same place and subject, with why."""

from __future__ import annotations

from sqlalchemy import select

from service.feed.models import Alert
from service.matching.engine import MatchingEngine
from tests.matching.builders import item


def _ticket_of(ctx, item_id: str) -> int:
    with ctx.db.session() as s:
        return s.execute(
            select(Alert.ticket_id).where(Alert.item_id == item_id, Alert.department == "env")
        ).scalar_one()


def test_a_complaint_and_a_news_report_about_one_place_are_suggested_not_merged(client, accounts) -> None:
    ctx = client.app.state.ctx
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
    elsewhere = item(3, "阳光花园小区化工厂异味", "城东区阳光花园小区旁的化工厂也有异味，气味类似油漆。")
    ctx.store.upsert([hotline, news, elsewhere])
    MatchingEngine(ctx).run()
    first, second, third = (_ticket_of(ctx, i.id) for i in (hotline, news, elsewhere))
    assert len({first, second, third}) == 3  # different words: not reposts, three tickets
    accounts.add("zhang", "officer")
    body = client.get(f"/api/v1/tickets/{first}", headers=accounts.headers("zhang")).json()
    assert [r["ticket_id"] for r in body["related"]] == [second]
    suggestion = body["related"][0]
    assert "柳岸社区" in suggestion["places"]
    assert "化工厂" in suggestion["terms"]
    assert suggestion["reason"].startswith("同在柳岸社区")
    # Once merged, the suggestion is gone (the merged ticket is no longer open on its own).
    merged = client.post(
        f"/api/v1/tickets/{first}/merge", json={"sources": [{"id": second}]}, headers=accounts.headers("zhang")
    )
    assert merged.status_code == 200
    assert client.get(f"/api/v1/tickets/{first}", headers=accounts.headers("zhang")).json()["related"] == []


def test_dashboard_regions_count_tickets_by_the_place_their_items_name(client, accounts) -> None:
    ctx = client.app.state.ctx
    ctx.store.upsert(
        [
            item(1, "化工厂异味", "河西区柳岸社区东边的化工厂夜里有异味。"),
            item(2, "化工厂排污", "河西区滨江大道旁化工厂偷偷排污。"),
            item(3, "化工厂异味", "城东区阳光花园小区旁的化工厂异味很重。"),
            item(4, "化工厂异味", "某化工厂异味。"),
        ]
    )
    MatchingEngine(ctx).run()
    accounts.add("wang", "leader")
    body = client.get("/api/v1/stats/regions", headers=accounts.headers("wang")).json()
    assert [(r["region"], r["count"], r["open"]) for r in body["results"]] == [
        ("河西区", 2, 2),
        ("城东区", 1, 1),
        ("未识别地点", 1, 1),
    ]
