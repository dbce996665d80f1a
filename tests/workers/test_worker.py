"""`yuqing worker` takes the scheduler's crawl and match jobs from the task queue (procrastinate on
PostgreSQL) and runs them: real processes, a real PostgreSQL server, the embedded item store."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select

from crawlers.process_env import PARENT_ENV
from crawlers.runner import CrawlError, close_crawl_hosts, crawl_sources, use_crawl_hosts
from service import clock
from service.db import Database
from service.feed.models import Alert
from service.scheduling import queue
from service.scheduling.jobhealth import JobTracker, load_states, record_run
from service.settings import Settings, load_settings
from service.store import make_store
from service.store.base import ItemQuery
from tests.crawlers.site import Page, Request, Site
from tests.foundation.conftest import run_cli
from tests.matching.builders import item

pytestmark = pytest.mark.long_running(150)  # seconds in CI: starts first (tests/conftest.py)

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
        "  heartbeat_seconds: 1\n  stalled_seconds: 5\n  recover_interval_seconds: 1\n  poll_seconds: 0.5\n"
        # Crawl hosts at the server's priority: at nice 10 a loaded CI machine starved one past its 240 s wait.
        "scheduler:\n  crawl_niceness: 0\n" + extra,
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


SLOW_SOURCE = """crawl:
  autothrottle: false
  download_delay: 0
  timeout: 60
  retries: 0
  concurrency_per_domain: 8
sources:
  - id: slow-12345
    name: 慢速12345
    channel: hotline
    type: html
    start_urls: ["{base}/list.html"]
    interval: 1d
    list:
      items: "ul.orders > li"
      url: "a::attr(href)"
    fields:
      external_id: "span.no"
      title: "h1::text"
      content: "div.content"
"""

TITLES = ["化工厂夜里异味很重", "化工厂异味又来了", "路灯坏了没人修"]


def slow_site(site: Site, first_delay: float) -> None:
    """A list of three orders whose detail pages answer the first time only after ``first_delay`` seconds
    (a slow government server; a crawl left running would still be waiting), then at once."""
    links = "".join(f'<li><a href="/detail_{n}.html">{t}</a></li>' for n, t in enumerate(TITLES, 1))
    site.html("/list.html", f"<html><body><ul class='orders'>{links}</ul></body></html>")
    for n, title in enumerate(TITLES, 1):
        body = f"<html><body><span class='no'>GD-{n}</span><h1>{title}</h1><div class='content'>{title}，请处理。</div>"

        def detail(request: Request, body: str = body) -> Page:
            delay = first_delay if site.hits.get(request.path, 0) <= 1 else 0.0
            return Page(200, (body + "</body></html>").encode(), "text/html; charset=utf-8", delay=delay)

        site.handle(f"/detail_{n}.html", detail)


def crawl_children_of(pid: int) -> list[int]:
    """Crawl processes started by process ``pid`` that still run."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"{PARENT_ENV}={pid}".encode() in environ:
            found.append(int(entry.name))
    return found


def crawling(pid: int) -> bool:
    """Whether worker ``pid`` runs a crawl now: a child forked by one of its crawl hosts (which it starts at
    its own start, idle until a crawl)."""
    processes = set(crawl_children_of(pid))
    for child in processes:
        with contextlib.suppress(OSError):
            parent = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent in processes:
                return True
    return False


def job_rows(libpq: str) -> dict[int, str]:
    """Every job in the queue: id -> status."""
    with psycopg.connect(libpq) as conn:
        rows = conn.execute("SELECT id, status::text FROM procrastinate_jobs").fetchall()
    return {row[0]: row[1] for row in rows}


@pytest.mark.postgres
@pytest.mark.timeout(900)  # the waits below are sized for a loaded CI machine
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the crawl child ends with its parent on Linux")
def test_one_crawl_of_a_source_at_a_time_and_a_killed_worker_loses_nothing(
    tmp_path: Path, postgres_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site()
    slow_site(site, first_delay=40)
    config, env = queue_config(tmp_path, postgres_database_url)
    (config / "sources.yaml").write_text(SLOW_SOURCE.replace("{base}", site.base), encoding="utf-8")
    assert run_cli("--config", str(config), "init", env=env).returncode == 0
    settings = settings_for(config, env, monkeypatch)
    libpq = postgres_database_url.replace("postgresql+psycopg://", "postgresql://")
    workers = [start_worker(config, env, tmp_path / f"worker{n}.log") for n in (1, 2)]
    db = Database(postgres_database_url)
    try:

        def crawl() -> int | None:
            """What the scheduler does when the source's crawl is due."""
            return queue.defer(
                settings, "crawl:slow-12345", "crawlers.scheduled:crawl_one", {"source_id": "slow-12345"}
            )

        first = crawl()
        assert first is not None
        wait_for(lambda: job_rows(libpq).get(first) == "doing", 120, "a worker took the crawl")
        # A crawl process starts Scrapy from cold: on a loaded 2-core CI machine that alone took over 60 s.
        wait_for(lambda: site.hits.get("/detail_1.html", 0) > 0, 240, "the crawl is waiting for a detail page")
        (holder,) = [w for w in workers if crawling(w.pid)]
        # The schedule fires again while the source is being crawled: the second crawl waits its turn.
        second = queue.defer(settings, "crawl:slow-12345", "crawlers.scheduled:crawl_one", {"source_id": "slow-12345"})
        assert second is not None
        assert (
            queue.defer(settings, "crawl:slow-12345", "crawlers.scheduled:crawl_one", {"source_id": "slow-12345"})
            is None
        )
        for _ in range(10):  # the other worker is idle, yet the source's lock keeps the second crawl waiting
            assert job_rows(libpq)[second] == "todo"
            time.sleep(0.2)
        # Killed mid-crawl: the crawl child goes with it, nothing else crawls the source meanwhile.
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        wait_for(lambda: not crawl_children_of(holder.pid), 15, "the killed worker's crawl process ended")
        assert job_rows(libpq)[second] == "todo"
        # The scheduler's recovery job (run here by hand) finds the dead worker's job once its heartbeat is
        # stale; the waiting crawl does the same work, so the dead one is closed and the waiting one runs.
        wait_for(lambda: bool(queue.recover_stalled(settings)) or job_rows(libpq)[first] == "failed", 60, "recovered")
        wait_for(lambda: second not in job_rows(libpq), 240, "the survivor crawled the source")

        def stored() -> list[str]:
            store = make_store(settings)
            try:
                page = store.search(ItemQuery(source="slow-12345", size=50))
                return sorted(i.external_id or "" for i in page.results)
            finally:
                store.close()

        def alerts() -> int:
            with db.session() as session:
                return session.scalar(select(func.count()).select_from(Alert)) or 0

        assert stored() == ["GD-1", "GD-2", "GD-3"]
        wait_for(lambda: alerts() == 2, 180, "the crawled items were matched")
        # The match job's alerts are committed a moment before the job itself is marked done and removed.
        wait_for(lambda: job_rows(libpq) == {first: "failed"}, 60, "only the dead worker's job left in the queue")
        assert job_rows(libpq) == {first: "failed"}
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=60)
            if worker.poll() is None:
                worker.kill()
        queue.close()
        db.dispose()
        site.close()
    assert alerts() == 2


def test_the_scheduler_shows_the_runs_that_workers_record(tmp_path: Path) -> None:
    """/healthz and stall notices see a queued job's real runs (on a worker), not its deferrals."""
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.migrate()
    try:
        tracker = JobTracker(db)
        tracker.register([("crawl:a", "抓取 a", IntervalTrigger(seconds=60))], external=frozenset({"crawl:a"}))
        ran = clock.now()
        record_run(db, "crawl:a", started=ran)
        record_run(db, "crawl:a", succeeded=ran)
        # The scheduler only deferred the job: its own notion of a run must not count or overwrite.
        tracker.succeeded("crawl:a", ran - timedelta(hours=1))
        tracker.failed("crawl:a", ran, RuntimeError("deferral"))
        assert tracker.flush()
        (state,) = tracker.snapshot()
        assert (state.last_success, state.last_error) == (ran, None)
        assert [(s.job_id, s.last_success) for s in load_states(db)] == [("crawl:a", ran)]
        record_run(db, "crawl:a", error=RuntimeError("站点超时"), at=ran)
        assert tracker.flush()
        assert tracker.snapshot()[0].last_error == "RuntimeError: 站点超时"
    finally:
        db.dispose()


def test_a_crawl_host_kills_a_crawl_past_its_time_and_serves_the_next(tmp_path: Path) -> None:
    """Workers crawl from a warm host process (a fork per crawl); a hung crawl still ends at its time limit."""
    site = Site()
    # The detail pages answer only after 120 s, past the crawl's own 60 s download timeout: a crawl that is not
    # killed ends with download errors, not with the time-limit error, whatever the machine's load.
    slow_site(site, first_delay=120)
    config = tmp_path / "config"
    config.mkdir()
    (config / "sources.yaml").write_text(SLOW_SOURCE.replace("{base}", site.base), encoding="utf-8")
    settings = load_settings(config, data_dir=str(tmp_path / "data"))
    settings.scheduler.crawl_niceness = 0  # the test waits on the host's start-up: not starved by neighbours
    use_crawl_hosts(True)
    try:
        started = time.monotonic()
        with pytest.raises(CrawlError, match="超时"):
            crawl_sources(settings, ["slow-12345"], timeout=20)
        # Killed at its 20 s limit (the host's start-up takes tens of seconds on a loaded 2-core CI machine).
        assert time.monotonic() - started < 100
        slow_site(site, first_delay=0)  # the server recovered
        again = crawl_sources(settings, ["slow-12345"], timeout=120)["slow-12345"]
        assert (again["new"], again["errors"]) == (3, 0)
    finally:
        close_crawl_hosts()
        use_crawl_hosts(False)
        site.close()
