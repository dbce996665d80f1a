"""The scheduler cannot die quietly: a running app (uvicorn on loopback, scheduler in process, SQLite)
whose SLA monitor breaks and whose job store reports ``database is locked`` keeps scheduling, turns
/healthz degraded (503), tells officers once through a local webhook, and tells them again when it
recovers. A dead scheduler thread stops the serving process instead of letting it serve as if all
were well.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy.exc import OperationalError

from service.app import create_app
from service.settings import NotificationRoute, Settings, load_settings
from tests.ledger.builders import WebhookReceiver

# Wide margins: the machine running the suite may be a loaded 2-core box.
WAIT = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what} not seen within {timeout}s (last: {last!r})")


@dataclass
class Running:
    app: Any
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/healthz", timeout=10)

    def job(self, job_id: str) -> dict[str, Any]:
        jobs = {j["id"]: j for j in self.health().json()["jobs"]}
        return jobs[job_id]


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: str) -> Settings:
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(config)
    settings.scheduler.sla_interval_seconds = 1
    settings.scheduler.watchdog_seconds = 0.5
    settings.scheduler.stale_min_seconds = 12
    settings.notifications.delivery_interval_seconds = 1
    settings.notifications.channels = {"ops": {"type": "webhook", "url": hook, "secret": "s" * 16}}
    # A model, not a dict: settings fields are not validated on assignment, and a dict here made
    # model_dump() warn (PydanticSerializationUnexpectedValue), which the test settings now turn into an error.
    settings.notifications.routes = [NotificationRoute(kinds=["monitoring"], channels=["ops"])]
    return Settings.model_validate(settings.model_dump())


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    hook.start()
    yield hook
    hook.stop()


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: WebhookReceiver) -> Iterator[Running]:
    settings = _settings(tmp_path, monkeypatch, receiver.url)
    api = create_app(settings, with_scheduler=True)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_config=None))
    # What `yuqing run` does (service.cli.server.serve_product): a dead scheduler stops the server.
    api.state.stop_server = lambda: setattr(server, "should_exit", True)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for("the server", lambda: server.started)
    yield Running(api, server, thread, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=60)


def subjects(receiver: WebhookReceiver) -> list[str]:
    return [json.loads(body)["subject"] for _headers, body in list(receiver.received)]


def test_a_broken_job_and_a_locked_job_store_never_stop_the_scheduler(
    running: Running, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = wait_for("a first SLA run", lambda: running.job("sla-check")["last_success"])
    assert running.health().status_code == 200
    assert running.health().json()["status"] == "ok"

    # The job store says "database is locked" while APScheduler updates a job's next run time: in
    # APScheduler 3 that ended its thread, and with it every job.
    real_update = SQLAlchemyJobStore.update_job
    failures = {"left": 3}

    def locked_update(self: SQLAlchemyJobStore, job: Any) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("UPDATE apscheduler_jobs", {}, sqlite3.OperationalError("database is locked"))
        real_update(self, job)

    monkeypatch.setattr(SQLAlchemyJobStore, "update_job", locked_update)
    wait_for("the locked updates", lambda: failures["left"] == 0)

    # The SLA monitor itself now raises at every run (its table is gone).
    db_path = running.app.state.ctx.db.engine.url.database
    with sqlite3.connect(db_path, timeout=60) as conn:
        conn.execute("ALTER TABLE tickets RENAME TO tickets_away")
    error = wait_for("the SLA job's error", lambda: running.job("sla-check")["last_error"])
    assert "tickets" in error
    degraded = wait_for("degraded health", lambda: (r := running.health()).status_code == 503 and r)
    body = degraded.json()
    assert body["status"] == "degraded"
    assert any("时限监控" in reason for reason in body["reasons"])
    job = running.job("sla-check")
    assert job["status"] == "stalled"
    assert job["last_success"] is not None
    assert job["last_start"] > first
    wait_for("the stall notice", lambda: any("【监测停顿】时限监控" in s for s in subjects(receiver)))

    with sqlite3.connect(db_path, timeout=60) as conn:
        conn.execute("ALTER TABLE tickets_away RENAME TO tickets")
    wait_for("healthy again", lambda: running.health().status_code == 200)
    wait_for("the recovery notice", lambda: any("【监测恢复】时限监控" in s for s in subjects(receiver)))
    time.sleep(3)  # more watchdog rounds: nothing is told twice
    told = subjects(receiver)
    assert sum("【监测停顿】时限监控" in s for s in told) == 1, told
    assert sum("【监测恢复】时限监控" in s for s in told) == 1, told
    # Every other job kept its schedule: the sender delivered the notices.
    assert running.job("outbox-delivery")["status"] == "ok"
    assert running.server.started
    assert running.thread.is_alive()


def test_a_dead_scheduler_thread_stops_the_server(running: Running) -> None:
    wait_for("a first SLA run", lambda: running.job("sla-check")["last_success"])
    scheduler = running.app.state.scheduler

    def die() -> None:
        raise SystemExit("simulated death of the APScheduler thread")

    scheduler.aps._process_jobs = die
    scheduler.aps.wakeup()
    running.thread.join(timeout=WAIT)
    assert not running.thread.is_alive(), "the server kept serving with a dead scheduler"
    assert "调度线程已停止" in running.app.state.fatal
    assert scheduler.failed


def test_job_health_is_visible_to_an_api_process_without_scheduler(running: Running, tmp_path: Path) -> None:
    """`yuqing serve` next to `yuqing scheduler`: the jobs' health comes from the database."""
    from fastapi.testclient import TestClient

    wait_for("a first SLA run", lambda: running.job("sla-check")["last_success"])
    wait_for("job health written", lambda: _stored_success(running.app.state.ctx))
    api_only = create_app(running.app.state.ctx.settings)
    with TestClient(api_only) as client:
        body = client.get("/healthz").json()
    assert body["scheduler"]["status"] == "external"
    jobs = {j["id"]: j for j in body["jobs"]}
    assert jobs["sla-check"]["last_success"] is not None
    assert jobs["sla-check"]["interval_seconds"] == 1


def _stored_success(ctx: Any) -> bool:
    from service.scheduling.jobhealth import load_states

    return any(s.job_id == "sla-check" and s.last_success for s in load_states(ctx.db))
