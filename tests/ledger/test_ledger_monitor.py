"""The SLA monitor: warning, breach, escalation and recovery, each exactly once, across restarts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from alerting.models import OutboxMessage, SlaNotice
from service.context import AppContext
from service.ledger.actions import act
from service.ledger.config import ledger_config
from service.ledger.monitoring import check_sla as run_sla_check
from service.ledger.service import get
from service.settings import Settings
from tests.ledger.builders import ENV_USER, T0, WebhookReceiver, new_ticket, run_cli


def make_ctx(tmp_path: Path, database_url: str, hook_url: str = "http://127.0.0.1:9/hook") -> AppContext:
    """A fresh application context: a new Database object each time, as after a restart."""
    settings = Settings(
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        database={"url": database_url},
        notifications={
            "channels": {"hook": {"type": "webhook", "url": hook_url, "secret": "k"}},
            "routes": [{"channels": ["hook"]}],
        },
    )
    ctx = AppContext.create(settings)
    ctx.db.migrate()
    return ctx


@pytest.fixture
def ctx(tmp_path: Path, database_url: str, frozen):
    app_ctx = make_ctx(tmp_path, database_url)
    yield app_ctx
    app_ctx.close()


def levels(report) -> list[tuple[str, str]]:
    return sorted((n.stage, n.level) for n in report.notices)


def outbox_kinds(ctx: AppContext) -> list[str]:
    with ctx.db.session() as s:
        return sorted(s.scalars(select(OutboxMessage.kind)))


def test_warning_then_breach_then_recovery_each_once(ctx, tmp_path, database_url, frozen) -> None:
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, severity="normal", policy=config.policy).id  # acknowledge: 4h
    assert run_sla_check(ctx, T0 + timedelta(hours=2)).notices == []
    report = run_sla_check(ctx, T0 + timedelta(hours=3, minutes=1))  # 75% of 4h is 3h
    assert levels(report) == [("acknowledge", "warning")]
    assert "签收时限将于 2026-03-02 14:00 到期" in report.notices[0].body
    assert run_sla_check(ctx, T0 + timedelta(hours=3, minutes=30)).notices == []
    report = run_sla_check(ctx, T0 + timedelta(hours=4, minutes=1))
    assert levels(report) == [("acknowledge", "breach")]
    assert report.breaches[0].subject.startswith("【超期】")

    # A restart: a new context and Database object on the same database raises nothing again.
    again = make_ctx(tmp_path, database_url)
    try:
        assert run_sla_check(again, T0 + timedelta(hours=4, minutes=2)).notices == []
    finally:
        again.close()

    frozen.set(T0 + timedelta(hours=5, minutes=30))
    with ctx.db.session() as s:
        act(s, ticket_id, ENV_USER, "acknowledge", config=config)
    report = run_sla_check(ctx, T0 + timedelta(hours=5, minutes=31))
    assert levels(report) == [("acknowledge", "recovery")]
    assert "超出时限 1小时30分钟" in report.notices[0].body
    assert run_sla_check(ctx, T0 + timedelta(hours=6)).notices == []
    assert outbox_kinds(ctx) == ["recovery", "sla_breach", "sla_warning"]


def test_notices_of_working_day_stages_count_working_days(ctx, frozen) -> None:
    """A normal ticket found on Monday 2026-03-02 10:00: 回应 (5wd) is due Monday 03-09 23:59:59 and warns on
    Friday at 18:00 with one working day left (not "3天5小时"); done on Wednesday 03-11 it is 2 working days
    late, 办理 (3wd, due Thursday 03-05) 4."""
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, severity="normal", policy=config.policy).id
        act(s, ticket_id, ENV_USER, "acknowledge", config=config)
    friday = T0 + timedelta(days=4, hours=8, minutes=1)  # 2026-03-06 18:01 in Beijing
    warning = next(n for n in run_sla_check(ctx, friday).notices if (n.stage, n.level) == ("respond", "warning"))
    assert "回应时限将于 2026-03-09 23:59 到期，剩余 1 个工作日，" in warning.body, warning.body
    run_sla_check(ctx, T0 + timedelta(days=8))  # the breaches, as the scheduled runs raise them
    frozen.set(T0 + timedelta(days=9))
    with ctx.db.session() as s:
        act(s, ticket_id, ENV_USER, "handle", result="已整改", config=config)
        act(s, ticket_id, ENV_USER, "respond", response_url="https://www.example.gov.cn/hd/1.html", config=config)
    report = run_sla_check(ctx, T0 + timedelta(days=9, minutes=1))
    late = {n.stage: n.body for n in report.notices if n.level == "recovery"}
    assert "超出时限 4 个工作日。" in late["handle"], late
    assert "超出时限 2 个工作日。" in late["respond"], late


def test_a_breached_respond_on_a_critical_ticket_escalates_once(ctx, tmp_path, database_url, frozen) -> None:
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, severity="critical", policy=config.policy).id
        act(s, ticket_id, ENV_USER, "acknowledge", config=config)
    report = run_sla_check(ctx, T0 + timedelta(hours=24, minutes=1))
    # Both stages past due at once: breaches only, no late warnings; respond escalates.
    assert levels(report) == [("handle", "breach"), ("respond", "breach"), ("respond", "escalation")]
    with ctx.db.session() as s:
        ticket = get(s, ticket_id)
        assert ticket.escalated
        entry = ticket.timeline[-1]
        assert (entry.action, entry.actor) == ("escalate", "system:sla")
        assert ticket.version == 3
    again = make_ctx(tmp_path, database_url)
    try:
        assert run_sla_check(again, T0 + timedelta(hours=30)).notices == []
    finally:
        again.close()
    assert outbox_kinds(ctx) == ["escalation", "sla_breach", "sla_breach"]
    with ctx.db.session() as s:
        assert s.scalar(select(SlaNotice.id).where(SlaNotice.level == "escalation")) is not None


def test_a_normal_ticket_breaching_respond_is_not_escalated(ctx, frozen) -> None:
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, severity="normal", policy=config.policy).id
    report = run_sla_check(ctx, T0 + timedelta(days=30))
    assert ("respond", "escalation") not in levels(report)
    with ctx.db.session() as s:
        assert not get(s, ticket_id).escalated


def test_sla_check_command_prints_what_it_raised(tmp_path, frozen) -> None:
    config_dir, data_dir = tmp_path / "config", tmp_path / "data"
    config_dir.mkdir()
    ctx = AppContext.create(Settings(config_dir=config_dir, data_dir=data_dir))
    ctx.db.migrate()
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        new_ticket(s, config, severity="critical", policy=config.policy)
    ctx.close()
    env = {"YUQING_DATA_DIR": str(data_dir)}
    done = run_cli("--config", str(config_dir), "sla", "check", "--at", "2026-03-02T10:25:00+08:00", env=env)
    assert done.returncode == 0, done.stderr
    assert "预警" in done.stdout
    assert "签收" in done.stdout
    bad = run_cli("--config", str(config_dir), "sla", "check", "--at", "yesterday", env=env)
    assert bad.returncode == 2
    assert "--at" in bad.stderr


def test_sla_check_at_only_reports_and_apply_refuses_the_future(tmp_path, frozen) -> None:
    """A what-if about a future time must not spend the real breach notices before the real deadline."""
    from datetime import UTC, datetime

    config_dir, data_dir = tmp_path / "config", tmp_path / "data"
    config_dir.mkdir()
    ctx = AppContext.create(Settings(config_dir=config_dir, data_dir=data_dir))
    ctx.db.migrate()
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, severity="critical", policy=config.policy).id
    env = {"YUQING_DATA_DIR": str(data_dir)}
    future = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    what_if = run_cli("--config", str(config_dir), "sla", "check", "--at", future, env=env)
    assert what_if.returncode == 0, what_if.stderr
    assert "超期" in what_if.stdout
    assert "督办" in what_if.stdout
    assert "未做任何改动" in what_if.stdout

    def written() -> tuple[int, int, bool]:
        with ctx.db.session() as s:
            notices = len(s.scalars(select(SlaNotice.id)).all())
            return notices, len(outbox_kinds(ctx)), get(s, ticket_id).escalated

    assert written() == (0, 0, False)
    refused = run_cli("--config", str(config_dir), "sla", "check", "--at", future, "--apply", env=env)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "未来" in refused.stderr
    assert written() == (0, 0, False)
    past = "2026-03-05T10:00:00+08:00"
    applied = run_cli("--config", str(config_dir), "sla", "check", "--at", past, "--apply", env=env)
    assert applied.returncode == 0, applied.stderr
    assert "已执行" in applied.stdout
    notices, _, escalated = written()
    assert notices >= 3
    assert escalated
    ctx.close()


def test_notices_reach_the_webhook_exactly_once(tmp_path, database_url, frozen) -> None:
    from alerting.outbox import deliver_due

    receiver = WebhookReceiver()
    receiver.start()
    app_ctx = make_ctx(tmp_path, database_url, receiver.url)
    try:
        config = ledger_config(app_ctx.settings)
        with app_ctx.db.session() as s:
            new_ticket(s, config, severity="critical", policy=config.policy)
        run_sla_check(app_ctx, T0 + timedelta(minutes=25))
        run_sla_check(app_ctx, T0 + timedelta(minutes=26))
        deliver_due(app_ctx.db, app_ctx.settings.notifications)
        deliver_due(app_ctx.db, app_ctx.settings.notifications)
    finally:
        app_ctx.close()
        receiver.stop()
    assert len(receiver.received) == 1
