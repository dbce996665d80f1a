"""`yuqing worker` takes the scheduler's crawl and match jobs from the task queue (procrastinate on
PostgreSQL) and runs them: real processes, a real PostgreSQL server, the embedded item store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from service.db import Database
from service.feed.models import Alert
from service.scheduling import queue
from service.settings import Settings, load_settings
from service.store import make_store
from tests.foundation.conftest import run_cli
from tests.matching.builders import item

DEPARTMENTS = """
departments:
  - id: env
    name: 市生态环境局
    rules:
      - id: env-pollution
        expr: '异味 AND 化工厂'
        severity: major
"""


def queue_config(tmp_path: Path, database_url: str, extra: str = "") -> tuple[Path, dict[str, str]]:
    """A config dir with the task queue on ``database_url``; the environment that points at its data dir."""
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "settings.yaml").write_text(
        f"database:\n  url: {database_url}\nqueue:\n  backend: procrastinate\n"
        "  heartbeat_seconds: 1\n  stalled_seconds: 5\n  recover_interval_seconds: 1\n  poll_seconds: 0.5\n" + extra,
        encoding="utf-8",
    )
    (config / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    return config, {"YUQING_DATA_DIR": str(tmp_path / "data")}


def settings_for(config: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings(config)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def start_worker(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "--config", str(config), "worker"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_worker_refuses_to_start_without_a_queue(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    result = run_cli("--config", str(config), "worker", env={"YUQING_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 2
    assert "任务队列未启用" in result.stderr


def test_a_queue_on_sqlite_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.yaml").write_text("queue:\n  backend: procrastinate\n", encoding="utf-8")
    result = run_cli("--config", str(config), "init", env={"YUQING_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 2
    assert "PostgreSQL" in result.stderr


@pytest.mark.postgres
def test_init_creates_the_queue_tables_once(tmp_path: Path, postgres_database_url: str) -> None:
    config, env = queue_config(tmp_path, postgres_database_url)
    first = run_cli("--config", str(config), "init", env=env)
    assert first.returncode == 0, first.stderr
    assert f"task queue ready: procrastinate {queue.installed_version()} (created)" in first.stdout
    again = run_cli("--config", str(config), "init", env=env)
    assert again.returncode == 0, again.stderr
    assert "(created)" not in again.stdout
    libpq = postgres_database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as conn:
        comment = conn.execute("SELECT obj_description('procrastinate_jobs'::regclass, 'pg_class')").fetchone()
    assert comment == (f"procrastinate {queue.installed_version()}",)


@pytest.mark.postgres
def test_a_worker_runs_a_queued_matching_job(
    tmp_path: Path, postgres_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, env = queue_config(tmp_path, postgres_database_url)
    assert run_cli("--config", str(config), "init", env=env).returncode == 0
    settings = settings_for(config, env, monkeypatch)
    store = make_store(settings)
    store.init()
    store.upsert(
        [
            item(1, "化工厂夜间异味扰民").with_fingerprint(),
            item(2, "河西化工厂又有异味").with_fingerprint(),
            item(3, "公园开放时间调整").with_fingerprint(),
        ]
    )
    store.close()
    try:
        assert queue.defer_match(settings) is not None
        # One matching run waits at a time: asking again while it waits adds nothing.
        assert queue.defer_match(settings) is None
    finally:
        queue.close()
    db = Database(postgres_database_url)
    worker = start_worker(config, env, tmp_path / "worker.log")
    try:

        def alerts() -> int:
            with db.session() as session:
                return session.scalar(select(func.count()).select_from(Alert)) or 0

        wait_for(lambda: alerts() == 2, 90, "the worker matched the two items")
        libpq = postgres_database_url.replace("postgresql+psycopg://", "postgresql://")

        def queue_empty() -> bool:
            with psycopg.connect(libpq) as conn:
                row = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
            return row is not None and row[0] == 0

        # A finished job leaves the queue (failed ones would stay for the operator).
        wait_for(queue_empty, 30, "the finished job left the queue")
        reopened = make_store(settings)
        try:
            assert next(iter(reopened.iter_unmatched(10)), []) == []
        finally:
            reopened.close()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        db.dispose()
    assert alerts() == 2
