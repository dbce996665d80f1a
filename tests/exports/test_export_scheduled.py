"""The weekly ledger job: when it fires (injected clock) and what it leaves in the data dir and the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from alerting.models import OutboxMessage
from service import clock, context
from service.app import DOMAIN_JOBS
from service.clock import SHANGHAI
from service.context import AppContext
from service.exports import scheduled
from service.settings import NotificationRoute, NotificationSettings, Settings, load_settings
from tests.exports.builders import PHONE, T0, make_ticket


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Settings:
    config = tmp_path / "config"
    config.mkdir()
    (config / "departments.yaml").write_text(
        "departments:\n  - id: env\n    name: 市生态环境局\n    rules: []\n", encoding="utf-8"
    )
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    loaded = load_settings(config)
    loaded.database.url = database_url
    loaded.notifications = NotificationSettings(
        channels={"office": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s3cret-for-tests"}},
        routes=[NotificationRoute(kinds=["report"], channels=["office"])],
    )
    return loaded


@pytest.fixture
def ctx(settings: Settings) -> Iterator[AppContext]:
    app_ctx = AppContext.create(settings)
    app_ctx.db.migrate()
    context.set_current(app_ctx)
    previous = clock.get_clock()
    yield app_ctx
    clock.set_clock(previous)
    context.set_current(None)
    app_ctx.close()


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def test_weekly_job_fires_monday_0830_shanghai_by_default() -> None:
    settings = Settings()
    frozen = clock.FrozenClock(local(2026, 3, 4, 12, 0))  # a Wednesday
    trigger = scheduled.weekly_trigger(settings)
    assert trigger.get_next_fire_time(None, frozen.now()) == local(2026, 3, 9, 8, 30)
    frozen.set(local(2026, 3, 9, 8, 29, 59))
    assert trigger.get_next_fire_time(None, frozen.now()) == local(2026, 3, 9, 8, 30)
    frozen.set(local(2026, 3, 9, 8, 30, 1))
    assert trigger.get_next_fire_time(None, frozen.now()) == local(2026, 3, 16, 8, 30)
    daily = scheduled.daily_trigger(settings)
    assert daily.get_next_fire_time(None, frozen.now()) == local(2026, 3, 10, 8, 0)


def test_job_times_come_from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("YUQING_EXPORTS__WEEKLY_CRON__DAY_OF_WEEK", "fri")
    monkeypatch.setenv("YUQING_EXPORTS__WEEKLY_CRON__HOUR", "17")
    monkeypatch.setenv("YUQING_EXPORTS__WEEKLY_CRON__MINUTE", "0")
    settings = load_settings(tmp_path)
    trigger = scheduled.weekly_trigger(settings)
    assert trigger.get_next_fire_time(None, local(2026, 3, 4, 12, 0)) == local(2026, 3, 6, 17, 0)
    ids = {spec.id for jobs in DOMAIN_JOBS for spec in jobs(settings)}
    assert {scheduled.WEEKLY_JOB_ID, scheduled.DAILY_JOB_ID} <= ids


def test_a_bad_day_of_week_is_refused_with_its_key(tmp_path: Path) -> None:
    from service.config_files import ConfigError

    (tmp_path / "settings.yaml").write_text("exports:\n  weekly_cron:\n    day_of_week: montag\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings.yaml: exports.weekly_cron.day_of_week"):
        load_settings(tmp_path)


def test_weekly_job_writes_last_week_into_the_data_dir_and_queues_it(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        make_ticket(s, 1, T0, result=f"回访电话{PHONE}")  # Monday of week 10
        make_ticket(s, 2, local(2026, 3, 8, 23, 30))  # Sunday of week 10
        make_ticket(s, 3, local(2026, 3, 9, 8, 0))  # week 11: not in the file
    fire = scheduled.weekly_trigger(ctx.settings).get_next_fire_time(None, local(2026, 3, 6, 9, 0))
    clock.set_clock(clock.FrozenClock(fire))

    scheduled.weekly_ledger_job()

    path = ctx.settings.data_path("exports", "回应台账_2026-W10.xlsx")
    assert path.exists()
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "台账"]
    assert [r[1] for r in wb["台账"].iter_rows(min_row=2, values_only=True)] == ["化工厂异味投诉1", "化工厂异味投诉2"]
    assert wb["台账"]["G2"].value == "市生态环境局"
    assert wb["汇总"]["A1"].value == "回应台账汇总 2026-03-02 至 2026-03-08"
    with ctx.db.session() as s:
        messages = s.scalars(select(OutboxMessage)).all()
        assert [(m.kind, m.channel) for m in messages] == [("report", "office")]
        assert messages[0].subject == "回应台账（2026年第10周，2026-03-02 至 2026-03-08）"
        assert "市生态环境局：2 件" in messages[0].body
        assert str(path) in messages[0].body

    # Running again (a retried or doubled run) rewrites the file but queues nothing new.
    scheduled.weekly_ledger_job()
    with ctx.db.session() as s:
        assert len(s.scalars(select(OutboxMessage)).all()) == 1


def test_daily_brief_job_writes_and_queues_yesterday(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        make_ticket(s, 1, T0)
    clock.set_clock(clock.FrozenClock(T0 + timedelta(days=1)))
    scheduled.daily_brief_job()
    path = ctx.settings.data_path("exports", "daily", "日报_2026-03-02.txt")
    text = path.read_text(encoding="utf-8")
    assert "【市生态环境局】新增 1 件，超期未办 1 件，发布回应 0 件" in text
    with ctx.db.session() as s:
        message = s.scalars(select(OutboxMessage)).one()
        assert message.subject == "舆情回应日报（2026年3月2日）"
        assert message.body == text.rstrip("\n")
