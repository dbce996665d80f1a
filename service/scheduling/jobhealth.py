"""Every scheduled job's last start, last success and last error; which jobs are stalled.

The scheduler keeps the states in memory (so they survive a locked or unreachable database) and
writes them to ``scheduler_job_health`` on every change and every watchdog tick, so that ``/healthz``
of an API process without a scheduler (``yuqing serve``) sees them too.

A job is *stalled* when its last success (or, before its first in this scheduler's life, the moment the
scheduler started watching it) is older than ``stale_factor`` × its interval. Stalls of the monitoring chain — crawling,
matching, the SLA monitor, the notification sender — are told to officers through the outbox once, and
once more when the job succeeds again.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service import clock
from service.db import Database
from service.scheduling.models import JobHealth

# Job ids (or prefixes) whose stall means monitoring has stopped, with what officers call them.
WATCHED = (("crawl:", "抓取"), ("matching-sweep", "匹配"), ("sla-check", "时限监控"), ("outbox-delivery", "通知发送"))


def watched_label(job_id: str) -> str | None:
    """The Chinese name of the monitoring stage a job belongs to, or None for other jobs."""
    for prefix, label in WATCHED:
        if job_id == prefix or (prefix.endswith(":") and job_id.startswith(prefix)):
            return label
    return None


def interval_of(trigger: BaseTrigger, now: datetime) -> float:
    """Seconds between two runs: the interval, or the gap between the next two fire times (cron)."""
    if isinstance(trigger, IntervalTrigger):
        return trigger.interval.total_seconds()
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
    if first is None or second is None:
        return float("inf")  # runs once or never: it cannot be late
    return max((second - first).total_seconds(), 1.0)


_RUN_COLUMNS = ("last_start", "last_success", "last_error_at", "last_error")


def _aware(value: Any) -> Any:
    # SQLite hands back naive datetimes even for timezone=True columns.
    if not isinstance(value, datetime) or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass
class JobState:
    job_id: str
    name: str
    interval_seconds: float
    registered_at: datetime
    last_start: datetime | None = None
    last_success: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    stalled_since: datetime | None = None

    def stale(self, now: datetime, factor: float, floor: float = 0.0) -> bool:
        """Last success, or the start of watching when that is later, older than ``factor`` intervals (and
        than ``floor`` seconds).

        A success from before this scheduler started says nothing about it: after a night switched off, the
        morning's start would otherwise tell officers every job had stalled, and then that each recovered."""
        since = max(self.last_success, self.registered_at) if self.last_success else self.registered_at
        return (now - since).total_seconds() > max(factor * self.interval_seconds, floor)

    def public(self, now: datetime, factor: float, floor: float = 0.0) -> dict[str, Any]:
        """The job as /healthz shows it (times ISO 8601; the error reason shortened)."""
        iso = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}
        return {
            "id": self.job_id,
            "name": self.name,
            "interval_seconds": self.interval_seconds if self.interval_seconds != float("inf") else None,
            "last_start": iso["last_start"],
            "last_success": iso["last_success"],
            "last_error_at": iso["last_error_at"],
            "last_error": self.last_error,
            "status": "stalled" if self.stale(now, factor, floor) else "ok",
        }


def _from_row(row: JobHealth) -> JobState:
    values: dict[str, Any] = {}
    for f in fields(JobState):
        value = getattr(row, f.name)
        values[f.name] = _aware(value) if isinstance(value, datetime) else value
    return JobState(**values)


def record_run(
    db: Database,
    job_id: str,
    *,
    started: datetime | None = None,
    succeeded: datetime | None = None,
    error: BaseException | None = None,
    at: datetime | None = None,
) -> None:
    """A worker's note of a queued job's start, success or error (the scheduler only deferred it)."""
    values: dict[str, Any] = {}
    if started is not None:
        values["last_start"] = started
    if succeeded is not None:
        values["last_success"] = succeeded
    if error is not None:
        values["last_error_at"] = at or clock.now()
        values["last_error"] = f"{type(error).__name__}: {error}".splitlines()[0][:480]
    if values:
        with db.session() as session:
            session.execute(update(JobHealth).where(JobHealth.job_id == job_id).values(**values))


def load_states(db: Database) -> list[JobState]:
    """The job states the scheduler last wrote (for an API process without a scheduler)."""
    with db.session() as session:
        return [_from_row(row) for row in session.scalars(select(JobHealth).order_by(JobHealth.job_id))]


class JobTracker:
    """The in-memory job states of this scheduler, written through to the database when it can."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self.states: dict[str, JobState] = {}
        # Jobs run by `yuqing worker` processes (queue mode): the workers write their runs
        # (``record_run``); this tracker reads them back instead of writing them.
        self.external: frozenset[str] = frozenset()
        # Only the jobs whose state changed since the last write are written: with hundreds of sources a
        # write of every row after each run (each deferral, in queue mode) took seconds of the scheduler's
        # pool threads, so first crawls waited past their misfire grace and were dropped for a whole interval.
        self._dirty: set[str] = set()
        # The set of watched jobs changed: rows of jobs no longer watched are deleted at the next write.
        self._prune = True

    def register(self, specs: list[tuple[str, str, BaseTrigger]], external: frozenset[str] = frozenset()) -> None:
        """Watch exactly these jobs (id, name, trigger); a known job keeps its history."""
        now = clock.now()
        try:
            with self.db.session() as session:
                stored = {row.job_id: _from_row(row) for row in session.scalars(select(JobHealth))}
        except Exception as exc:  # a locked or absent database must not stop the scheduler
            logger.warning("未能读取任务健康状态：{}", exc)
            stored = {}
        with self._lock:
            wanted = {}
            for job_id, name, trigger in specs:
                state = self.states.get(job_id)
                if state is None:
                    # A stall already told to officers stays open across a restart, so its recovery is told.
                    previous = stored.get(job_id)
                    state = JobState(job_id, name, interval_of(trigger, now), now)
                    if previous is not None:
                        state.stalled_since = previous.stalled_since
                        state.last_success = previous.last_success
                        state.last_error, state.last_error_at = previous.last_error, previous.last_error_at
                else:
                    state.name, state.interval_seconds = name, interval_of(trigger, now)
                wanted[job_id] = state
            self.states = wanted
            self.external = external
            self._dirty = set(wanted)
            self._prune = True
        self.flush()

    def started(self, job_id: str, at: datetime) -> None:
        self._update(job_id, last_start=at)

    def succeeded(self, job_id: str, at: datetime) -> None:
        self._update(job_id, last_success=at)

    def failed(self, job_id: str, at: datetime, error: BaseException) -> None:
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:480]
        self._update(job_id, last_error_at=at, last_error=reason)

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            state = self.states.get(job_id)
            if state is None or (job_id in self.external and "stalled_since" not in changes):
                return
            for key, value in changes.items():
                setattr(state, key, value)
            self._dirty.add(job_id)

    def snapshot(self) -> list[JobState]:
        with self._lock:
            return [JobState(**asdict(s)) for s in sorted(self.states.values(), key=lambda s: s.job_id)]

    def set_stalled(self, job_id: str, since: datetime | None) -> None:
        self._update(job_id, stalled_since=since)

    def flush(self, read_back: bool = True) -> bool:
        """Write the changed states to the database; False (and logged) when it cannot right now.

        ``read_back`` also reads the runs that workers recorded for queued jobs (one query for all of them);
        the watchdog round does, a job's own event does not need to.
        """
        with self._lock:
            external = self.external
            read = read_back and bool(external)
            if not self._dirty and not self._prune and not read:
                return True
            dirty = [JobState(**asdict(self.states[j])) for j in sorted(self._dirty) if j in self.states]
            watched = list(self.states) if self._prune else None
            self._dirty, self._prune = set(), False
        now = clock.now()
        runs: dict[str, dict[str, Any]] = {}
        try:
            with self.db.session() as session:
                if watched is not None:
                    session.execute(delete(JobHealth).where(JobHealth.job_id.not_in(watched)))
                rows = _rows(session, [s.job_id for s in dirty])
                for state in dirty:
                    row = rows.get(state.job_id)
                    if row is None:
                        session.add(JobHealth(**asdict(state), updated_at=now))
                    elif state.job_id in external:
                        # Only what the scheduler knows; the run columns belong to the workers.
                        row.name, row.interval_seconds = state.name, state.interval_seconds
                        row.stalled_since, row.updated_at = state.stalled_since, now
                    else:
                        for key, value in asdict(state).items():
                            setattr(row, key, value)
                        row.updated_at = now
                if read:
                    columns = [getattr(JobHealth, name) for name in _RUN_COLUMNS]
                    for job_id, *recorded in session.execute(select(JobHealth.job_id, *columns)):
                        if job_id in external:
                            runs[job_id] = {n: _aware(v) for n, v in zip(_RUN_COLUMNS, recorded, strict=True)}
        except Exception as exc:
            with self._lock:
                self._dirty.update(s.job_id for s in dirty)
                self._prune = self._prune or watched is not None
            logger.warning("未能写入任务健康状态（下次检查时重试）：{}", exc)
            return False
        with self._lock:
            for job_id, values in runs.items():
                current = self.states.get(job_id)
                if current is not None:
                    for key, value in values.items():
                        setattr(current, key, value)
        return True


# Ids per IN list: well under SQLite's smallest limit of bound parameters (999).
_CHUNK = 500


def _rows(session: Session, job_ids: list[str]) -> dict[str, JobHealth]:
    """The stored rows of these jobs, a few queries for any number of them."""
    found: dict[str, JobHealth] = {}
    for start in range(0, len(job_ids), _CHUNK):
        chunk = job_ids[start : start + _CHUNK]
        found.update((row.job_id, row) for row in session.scalars(select(JobHealth).where(JobHealth.job_id.in_(chunk))))
    return found
