"""The scheduled crawl job: a crawl that hangs is killed, recorded as a source failure and notified.

The job runs as the scheduler runs it: the crawl stage, then the later stages' reaction to its summary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from alerting.models import OutboxMessage
from crawlers import runner, scheduled
from crawlers.demo.server import demo_sources_yaml, serve_demo
from crawlers.health import get_health
from service import context
from service.context import AppContext
from service.flows import after_job
from service.settings import NotificationRoute, NotificationSettings, load_settings


@pytest.fixture
def ctx(tmp_path: Path):
    server, url = serve_demo(0, live_interval=0)
    config = tmp_path / "config"
    config.mkdir()
    (config / "sources.yaml").write_text(demo_sources_yaml(url), encoding="utf-8")
    settings = load_settings(config, data_dir=str(tmp_path / "data"))
    settings.notifications = NotificationSettings(
        channels={"ops": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s3cret-for-tests"}},
        routes=[NotificationRoute(kinds=["source_health"], channels=["ops"])],
    )
    app_ctx = AppContext.create(settings)
    app_ctx.db.migrate()
    context.set_current(app_ctx)
    yield app_ctx
    context.set_current(None)
    app_ctx.close()
    server.shutdown()


def test_a_crawl_that_does_not_finish_is_a_source_failure(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    # Scrapy alone needs more than 0.2 s to start: the job's time limit kills the child.
    monkeypatch.setattr(scheduled, "CRAWL_TIMEOUT_SECONDS", 0.2)
    summary = scheduled.crawl_one("demo-mailbox")
    after_job(ctx, "crawl:demo-mailbox", summary)
    assert summary["healthy"] is False
    assert "超时" in summary["failure"]
    health = get_health(ctx.settings, "demo-mailbox")
    assert health.consecutive_failures == 1
    with ctx.db.session() as session:
        notices = session.execute(select(OutboxMessage).where(OutboxMessage.kind == "source_health")).scalars().all()
        assert len(notices) == 1
        assert "demo-mailbox" in notices[0].subject


def test_a_working_crawl_stores_items_and_stays_healthy(ctx) -> None:
    summary = scheduled.crawl_one("demo-mailbox")
    after_job(ctx, "crawl:demo-mailbox", summary)
    assert summary["new"] == 12
    assert get_health(ctx.settings, "demo-mailbox").healthy


@pytest.mark.skipif(not hasattr(os, "nice") or shutil.which("nice") is None, reason="POSIX nice(1) only")
def test_crawl_processes_run_below_the_servers_cpu_priority(tmp_path: Path) -> None:
    """A crawl is background work: its process starts at `scheduler.crawl_niceness` above the server's."""
    settings = load_settings(tmp_path, data_dir=str(tmp_path / "data"))
    assert settings.scheduler.crawl_niceness == 10
    command = runner.crawl_command(settings, ["demo-12345"])
    assert command[-2:] == ["--", "demo-12345"]
    python_at = command.index(sys.executable)
    # What the child sees: run the same launcher with a Python that reports its own niceness.
    launcher = [*command[:python_at], sys.executable, "-c", "import os; print(os.nice(0))"]
    seen = subprocess.run(launcher, capture_output=True, text=True, timeout=120, check=True)
    assert int(seen.stdout) == min(19, os.nice(0) + 10)
    settings.scheduler.crawl_niceness = 0
    assert runner.crawl_command(settings, ["demo-12345"])[0] == sys.executable
