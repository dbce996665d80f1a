"""The distributed task queue: procrastinate, on the PostgreSQL the ledger already uses (no broker).

With ``queue.backend: procrastinate`` the scheduler stays the only source of schedules (APScheduler,
behind its lease) but defers its crawl and match jobs here instead of running them, and ``yuqing
worker`` processes on any machines take them. The guarantees come from the queue, not from luck:

- one job per lock at a time, on all workers together: each source's crawl has its own lock, matching
  has one (procrastinate's ``lock``); and at most one of each waits (its ``queueing_lock``), so a slow
  source does not pile up crawls;
- a worker killed mid-task (SIGKILL, a machine gone) stops its heartbeat; the scheduler puts its
  unfinished jobs back in the queue after ``queue.stalled_seconds`` (``recover_stalled``), and the work
  itself is idempotent (items by id, alerts by item and department, outbox rows by key);
- the queue's schema is applied by ``yuqing init`` (and at start-up) on PostgreSQL, upgrades included.
"""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger
from procrastinate import exceptions as queue_errors
from procrastinate import sql as queue_sql
from procrastinate import utils as queue_utils
from procrastinate.schema import SchemaManager
from psycopg import sql
from sqlalchemy.engine import make_url

from service import context
from service.scheduling.registry import JobSpec
from service.settings import Settings

# The one task of the queue: a scheduled job (its id, its "module:function", its arguments), run by a
# worker exactly as the scheduler would have run it. Its name is what the queue's rows carry.
JOB_TASK = "yuqing.job"
MATCH_JOB_ID = "matching-sweep"
MATCH_FUNC = "service.matching.scheduled:sweep"
MATCH_LOCK = "match"
# Matching has a queue of its own, taken by a lane of every worker that never crawls: a matching run waits
# at most for the run before it, never behind a backlog of crawls (alerts within moments of a crawl).
MATCH_QUEUE = "match"
CRAWL_QUEUE = "default"  # procrastinate's default queue: where crawls (and older releases' matching) wait
# A transaction-level advisory lock: API replicas and the scheduler starting together apply the schema once.
_SCHEMA_LOCK = 7_311_017


def enabled(settings: Settings) -> bool:
    """Whether crawl and match work goes to ``yuqing worker`` processes."""
    return settings.queue.backend == "procrastinate"


def is_postgresql(settings: Settings) -> bool:
    return settings.database_url.startswith("postgresql")


def conninfo(settings: Settings) -> str:
    """The database URL as libpq understands it (SQLAlchemy's ``+psycopg`` driver suffix removed)."""
    url = make_url(settings.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def make_app(settings: Settings, **pool: Any) -> procrastinate.App:
    """A procrastinate App on the ledger's database (opened by the caller)."""
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(settings), **pool)
    return procrastinate.App(connector=connector)


_apps: dict[str, procrastinate.App] = {}
_apps_lock = threading.Lock()


def _deferrer(settings: Settings) -> procrastinate.App:
    """This process's synchronously opened app for deferring (one small pool per database)."""
    key = conninfo(settings)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            app = _apps[key] = make_app(settings, min_size=1, max_size=4).open()
        return app


def close() -> None:
    """Close the deferring pools of this process (at shutdown)."""
    with _apps_lock:
        apps = list(_apps.values())
        _apps.clear()
    for app in apps:
        try:
            app.close()
        except Exception as exc:  # closing at shutdown must not hide the reason we stop
            logger.warning("任务队列连接池未能正常关闭：{}", exc)


def queue_for(lock: str) -> str:
    """The queue a job of this lock waits in: matching in its own, everything else with the crawls."""
    return MATCH_QUEUE if lock == MATCH_LOCK else CRAWL_QUEUE


def defer(
    settings: Settings, job_id: str, func: str, kwargs: dict[str, Any] | None = None, lock: str | None = None
) -> int | None:
    """Queue one run of a scheduled job; None when one of the same lock is already waiting (not an error)."""
    lock = lock or job_id
    app = _deferrer(settings)
    # Looked up first: the insert would fail the same way, but each failure is an ERROR line in
    # PostgreSQL's log, and the matching trigger asks several times a second while a run is going.
    waiting = app.connector.get_sync_connector().execute_query_one(
        query="SELECT count(*) AS n FROM procrastinate_jobs WHERE queueing_lock = %(lock)s AND status = 'todo'",
        lock=lock,
    )
    if waiting["n"]:
        return None
    deferrer = app.configure_task(JOB_TASK, lock=lock, queueing_lock=lock, queue=queue_for(lock))
    try:
        return deferrer.defer(job_id=job_id, func=func, kwargs=kwargs or {})
    except queue_errors.AlreadyEnqueued:
        return None


def defer_job(job_id: str, func: str, lock: str | None = None, task_kwargs: dict[str, Any] | None = None) -> None:
    """The scheduler's job in queue mode: put the real job in the queue for a worker."""
    defer(context.current().settings, job_id, func, task_kwargs, lock)


def defer_match(settings: Settings) -> int | None:
    """Queue a matching run (new items are waiting); at most one waits at a time."""
    return defer(settings, MATCH_JOB_ID, MATCH_FUNC, lock=MATCH_LOCK)


def recover_stalled(settings: Settings) -> list[int]:
    """Put the unfinished jobs of dead workers (no heartbeat for ``queue.stalled_seconds``) back in the queue.

    A job whose lock already has another run waiting is closed as failed instead: that waiting run does
    the same work, and two waiting runs of one lock are what the queueing lock forbids.
    """
    app = _deferrer(settings)
    sync = app.connector.get_sync_connector()
    rows = sync.execute_query_all(
        query=queue_sql.queries["select_stalled_jobs_by_heartbeat"],
        queue=None,
        task_name=JOB_TASK,
        seconds_since_heartbeat=settings.queue.stalled_seconds,
    )
    retried = []
    for row in rows:
        try:
            app.job_manager.retry_job_by_id(row["id"], retry_at=queue_utils.utcnow())
            retried.append(row["id"])
            logger.warning("任务 {} 的工作进程已失联，任务重新排队（job of a dead worker retried）", row["id"])
        except queue_errors.UniqueViolation:
            sync.execute_query(
                query=queue_sql.queries["finish_job"], job_id=row["id"], status="failed", delete_job=False
            )
            logger.warning("任务 {} 的工作进程已失联；同一锁已有等待中的任务，本任务记为失败", row["id"])
    return retried


def recover_job() -> None:
    """Scheduled job (queue mode only): retry the jobs of dead workers."""
    recover_stalled(context.current().settings)


# -- schema --------------------------------------------------------------------------------------------


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3])


def installed_version() -> str:
    return importlib.metadata.version("procrastinate")


def ensure_schema(settings: Settings) -> str | None:
    """Create procrastinate's tables on PostgreSQL, or bring them up to the installed version.

    The version applied is kept as the comment of ``procrastinate_jobs``; an upgrade applies the
    migrations shipped with procrastinate that are newer than it, in order (stop the workers first).
    Returns what was done ("created", "migrated to X"), None when nothing was needed or not PostgreSQL.
    """
    if not is_postgresql(settings):
        return None
    version = installed_version()
    with psycopg.connect(conninfo(settings)) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        row = conn.execute(
            "SELECT obj_description(to_regclass('procrastinate_jobs'), 'pg_class'), to_regclass('procrastinate_jobs')"
        ).fetchone()
        comment, exists = (row[0], row[1]) if row else (None, None)
        done: str | None = None
        if exists is None:
            conn.execute(SchemaManager.get_schema())
            done = "created"
        else:
            applied = (comment or "").removeprefix("procrastinate ").strip()
            if not applied:
                # Created by hand (`procrastinate schema --apply`) without a version: trust it as current.
                applied = version
            pending = [
                path
                for path in sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql"))
                if _version_tuple(path.name.split("_", 1)[0]) > _version_tuple(applied)
            ]
            for path in pending:
                conn.execute(path.read_text(encoding="utf-8"))
            done = f"migrated to {version}" if pending else None
        conn.execute(
            sql.SQL("COMMENT ON TABLE procrastinate_jobs IS {}").format(sql.Literal(f"procrastinate {version}"))
        )
    if done:
        logger.info("任务队列表已就绪（procrastinate {}）：{}", version, done)
    return done


def jobs(settings: Settings) -> list[JobSpec]:
    """The scheduler's own queue job (queue mode only): give the jobs of dead workers to live ones."""
    if not enabled(settings):
        return []
    return [
        JobSpec(
            id="queue-recover",
            func="service.scheduling.queue:recover_job",
            trigger=IntervalTrigger(seconds=settings.queue.recover_interval_seconds),
            name="回收失联工作进程的任务",
        )
    ]
