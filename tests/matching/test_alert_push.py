"""Alert hygiene: quiet hours, digests, and a departments.yaml edit picked up without a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from alerting.models import OutboxMessage
from service import context
from service.feed.models import Alert
from service.matching import scheduled
from service.matching.engine import MatchingEngine
from service.settings import PushPolicy
from tests.matching.builders import item
from tests.matching.conftest import DEPARTMENTS

WEBHOOK = {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s3cret-s3cret"}}


def _route_everything(ctx) -> None:
    from service.settings import NotificationRoute, NotificationSettings

    ctx.settings.notifications = NotificationSettings(channels=WEBHOOK, routes=[NotificationRoute(channels=["hook"])])


def _pushes(ctx) -> list[OutboxMessage]:
    with ctx.db.session() as session:
        return list(session.execute(select(OutboxMessage).where(OutboxMessage.kind == "alert")).scalars())


def test_quiet_hours_push_only_major_and_critical(client, frozen) -> None:
    ctx = client.app.state.ctx
    _route_everything(ctx)
    ctx.settings.alerts.push = PushPolicy(mode="immediate", quiet_hours="22:00-07:00")
    frozen.set(datetime(2026, 11, 23, 15, 30, tzinfo=UTC))  # 23:30 in Asia/Shanghai
    ctx.store.upsert([item(1, "工地噪音", "夜间噪音"), item(2, "化工厂排污", "化工厂排污")])
    MatchingEngine(ctx).run()
    with ctx.db.session() as session:
        push = {a.rule_ids[0]: a.push for a in session.execute(select(Alert)).scalars()}
    assert push == {"env-noise": "quiet", "env-pollution": "pushed"}
    assert len(_pushes(ctx)) == 1


def test_digest_mode_sends_one_message_after_the_period(client, frozen) -> None:
    ctx = client.app.state.ctx
    _route_everything(ctx)
    ctx.settings.alerts.departments = {"env": PushPolicy(mode="digest", digest_minutes=15)}
    ctx.store.upsert([item(n, f"化工厂排污{n}", "化工厂排污") for n in range(3)])
    MatchingEngine(ctx).run()
    context.set_current(ctx)
    scheduled.digests()
    assert _pushes(ctx) == []  # the oldest has not waited 15 minutes yet
    frozen.advance(timedelta(minutes=16))
    scheduled.digests()
    scheduled.digests()
    messages = _pushes(ctx)
    assert len(messages) == 1
    assert "共 3 条" in messages[0].subject


def test_editing_departments_yaml_swaps_the_matcher(client) -> None:
    ctx = client.app.state.ctx
    engine = MatchingEngine(ctx)
    ctx.store.upsert([item(1, "共享单车乱停放", "人行道上共享单车乱停放")])
    assert engine.run().alerts == 0
    path = Path(ctx.settings.config_dir) / "departments.yaml"
    path.write_text(
        DEPARTMENTS
        + """  - id: traffic
    name: 市交通运输局
    rules:
      - id: traffic-bikes
        expr: '共享单车 AND (乱停 OR 乱停放)'
""",
        encoding="utf-8",
    )
    ctx.store.upsert([item(2, "共享单车又乱停放", "小区门口共享单车乱停放")])
    report = engine.run()
    assert report.alerts == 1
    assert engine.rulebook.current().rule_ids.count("traffic-bikes") == 1


def test_sse_resumes_after_last_event_id(client, accounts) -> None:
    ctx = client.app.state.ctx
    ctx.store.upsert([item(n, f"化工厂排污{n}", "化工厂排污") for n in range(3)])
    MatchingEngine(ctx).run()
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1") | {"Last-Event-ID": "1"}
    ids = []
    with client.stream("GET", "/api/v1/alerts/stream", headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                # "alert:suggestion": the alert part is where the stream resumes its alerts.
                ids.append(int(line[4:].partition(":")[0]))
            if len(ids) == 2:
                break
    assert ids == [2, 3]
