"""The notification outbox: routing, dedupe, delivery to a real local webhook with backoff, signatures."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from alerting.channels import ChannelConfigError, build_notifier, check_channel_config
from alerting.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from alerting.models import OutboxMessage
from alerting.outbox import channels_for, deliver_due, enqueue
from service.config_files import ConfigError
from service.settings import NotificationSettings, load_settings
from tests.ledger.builders import WebhookReceiver, webhook_notifications


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


def rows(db) -> list[OutboxMessage]:
    with db.session() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_message_waits_while_the_webhook_is_down_and_arrives_once_when_it_is_up(db, frozen, receiver) -> None:
    notifications = webhook_notifications(receiver.url, backoff_seconds=30)
    with db.session() as s:
        enqueue(s, "sla_breach", "env", "major", "【超期】测试", "回应时限已到期", "k1", notifications=notifications)
    report = deliver_due(db, notifications)
    assert report.retrying
    assert not report.sent
    [row] = rows(db)
    assert row.attempts == 1
    assert row.sent_at is None
    assert row.last_error
    assert row.next_attempt_at == frozen.now() + timedelta(seconds=30)
    receiver.start()
    # Not due yet: the backoff holds even though the server is back.
    assert deliver_due(db, notifications).sent == []
    frozen.advance(timedelta(seconds=31))
    assert deliver_due(db, notifications).sent == [row.id]
    frozen.advance(timedelta(hours=1))
    assert deliver_due(db, notifications).sent == []
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert verify("s3cret", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify("wrong", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert (payload["kind"], payload["subject"], payload["department"]) == ("sla_breach", "【超期】测试", "env")
    [row] = rows(db)
    assert row.sent_at is not None
    assert row.attempts == 2


def test_backoff_doubles_and_gives_up_after_max_attempts(db, frozen, receiver) -> None:
    notifications = webhook_notifications(receiver.url, backoff_seconds=10, max_attempts=3)
    with db.session() as s:
        enqueue(s, "alert", "env", "minor", "s", "b", "k", notifications=notifications)
    waits = []
    for _ in range(3):
        before = frozen.now()
        deliver_due(db, notifications)
        [row] = rows(db)
        if row.next_attempt_at is not None:
            waits.append(row.next_attempt_at - before)
            frozen.set(row.next_attempt_at)
    assert waits == [timedelta(seconds=10), timedelta(seconds=20)]
    [row] = rows(db)
    assert row.failed_at is not None
    assert row.attempts == 3
    receiver.start()
    frozen.advance(timedelta(days=1))
    assert deliver_due(db, notifications).sent == []


def test_two_workers_never_send_the_same_message(db, frozen, receiver, database_url) -> None:
    from service.db import Database

    notifications = webhook_notifications(receiver.url)
    receiver.start()
    with db.session() as s:
        for i in range(10):
            enqueue(s, "alert", "env", "minor", f"s{i}", "b", f"k{i}", notifications=notifications)
    workers = [Database(database_url) for _ in range(3)]
    start = threading.Barrier(3)

    def work(d: Database) -> None:
        start.wait()
        deliver_due(d, notifications)

    threads = [threading.Thread(target=work, args=(d,)) for d in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for d in workers:
        d.dispose()
    subjects = sorted(json.loads(body)["subject"] for _, body in receiver.received)
    assert subjects == sorted(f"s{i}" for i in range(10))
    assert all(r.sent_at is not None for r in rows(db))


def test_enqueue_routes_by_department_severity_and_kind_and_dedupes(db, frozen) -> None:
    notifications = NotificationSettings(
        channels={
            "env-robot": {"type": "dingtalk", "token": "t1"},
            "leaders": {
                "type": "email",
                "host": "smtp.example.gov.cn",
                "to": ["boss@example.gov.cn"],
                "sender": "yq@example.gov.cn",
            },
            "ops": {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "k"},
        },
        routes=[
            {"departments": ["env"], "channels": ["env-robot"]},
            {"kinds": ["escalation"], "severities": ["major", "critical"], "channels": ["leaders"]},
            {"departments": "*", "kinds": ["sla_breach"], "channels": ["ops", "env-robot"]},
        ],
    )
    assert channels_for(notifications, "alert", "env", "minor") == ["env-robot"]
    assert channels_for(notifications, "alert", "water", "minor") == []
    assert channels_for(notifications, "escalation", "water", "critical") == ["leaders"]
    assert channels_for(notifications, "escalation", "water", "normal") == []
    assert channels_for(notifications, "sla_breach", "env", "minor") == ["env-robot", "ops"]
    with db.session() as s:
        first = enqueue(s, "sla_breach", "env", "minor", "s", "b", "same", notifications=notifications)
        again = enqueue(s, "sla_breach", "env", "minor", "s", "b", "same", notifications=notifications)
    assert len(first) == 2
    assert again == []
    assert sorted(r.channel for r in rows(db)) == ["env-robot", "ops"]
    with db.session() as s, pytest.raises(ValueError, match="unknown notification kind"):
        enqueue(s, "gossip", "env", "minor", "s", "b", "k", notifications=notifications)


def test_channel_options_are_checked_at_load(tmp_path) -> None:
    with pytest.raises(ChannelConfigError, match=r"channels.x.type: unknown channel type 'pager'"):
        check_channel_config("x", {"type": "pager"})
    with pytest.raises(ChannelConfigError, match=r"channels.x.token: required for type dingtalk"):
        check_channel_config("x", {"type": "dingtalk"})
    with pytest.raises(ChannelConfigError, match=r"channels.x.tokn: unknown option"):
        check_channel_config("x", {"type": "feishu", "token": "a", "tokn": "b"})
    with pytest.raises(ChannelConfigError, match="must start with http"):
        check_channel_config("x", {"type": "webhook", "url": "file:///etc/passwd", "secret": "k"})
    (tmp_path / "settings.yaml").write_text("notifications:\n  channels:\n    robot: {type: wecom}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings.yaml: notifications: .*channels.robot.key: required"):
        load_settings(tmp_path)


def test_apprise_urls_are_built_from_the_options() -> None:
    assert (
        build_notifier("a", {"type": "dingtalk", "token": "tok", "secret": "SEC"}).apprise_url()
        == "dingtalk://SEC@tok/"
    )
    assert build_notifier("b", {"type": "wecom", "key": "k-1"}).apprise_url() == "wecombot://k-1"
    assert build_notifier("c", {"type": "feishu", "token": "f/1"}).apprise_url() == "feishu://f%2F1"
    url = build_notifier(
        "d",
        {
            "type": "email",
            "host": "smtp.example.gov.cn",
            "port": 465,
            "secure": True,
            "username": "yq",
            "password": "p@ss",
            "sender": "yq@example.gov.cn",
            "to": ["a@example.gov.cn", "b@example.gov.cn"],
        },
    ).apprise_url()
    assert url.startswith("mailtos://yq:p%40ss@smtp.example.gov.cn:465/?")
    assert "to=a%40example.gov.cn%2Cb%40example.gov.cn" in url
    import apprise

    for name, options in [
        ("a", {"type": "dingtalk", "token": "tok"}),
        ("b", {"type": "wecom", "key": "k"}),
        ("c", {"type": "feishu", "token": "t"}),
    ]:
        assert apprise.Apprise().add(build_notifier(name, options).apprise_url())
