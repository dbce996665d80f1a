"""Telling officers that monitoring stalled, and that it runs again (each once, through the outbox)."""

from __future__ import annotations

from datetime import datetime

from loguru import logger

from alerting.outbox import deliver_ids, enqueue
from service import clock
from service.context import AppContext
from service.masking import mask_text
from service.scheduling.jobhealth import JobState, JobTracker, watched_label


def _when(value: datetime | None) -> str:
    return clock.to_local(value).strftime("%Y-%m-%d %H:%M:%S") if value else "从未"


def _period(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} 小时"
    if seconds >= 60:
        return f"{seconds / 60:g} 分钟"
    return f"{seconds:g} 秒"


def stall_text(state: JobState, label: str) -> tuple[str, str]:
    """Subject and body of the notice that a monitoring job stalled."""
    error = mask_text(state.last_error) if state.last_error else "无（任务可能卡住或调度未运行）"
    body = (
        f"{label}任务「{state.name}」最近一次成功：{_when(state.last_success)}，"
        f"按周期 {_period(state.interval_seconds)} 已明显超时。最近错误：{error}。"
        f"恢复之前，新的舆情、预警或时限提醒可能无法及时发现或发出。"
    )
    return f"【监测停顿】{label}：{state.name}", body


def recovery_text(state: JobState, label: str) -> tuple[str, str]:
    """Subject and body of the notice that a stalled monitoring job runs again."""
    body = (
        f"{label}任务「{state.name}」已于 {_when(state.last_success)} 恢复运行"
        f"（停顿发现于 {_when(state.stalled_since)}）。"
    )
    return f"【监测恢复】{label}：{state.name}", body


def check_stalls(ctx: AppContext, tracker: JobTracker) -> None:
    """Queue a stall notice for each newly stalled monitoring job and a recovery notice for each recovered one."""
    now = clock.now()
    factor = ctx.settings.scheduler.stale_factor
    floor = ctx.settings.scheduler.stale_min_seconds
    for state in tracker.snapshot():
        label = watched_label(state.job_id)
        if label is None:
            continue
        stale = state.stale(now, factor, floor)
        if stale and state.stalled_since is None:
            subject, body, key, since = *stall_text(state, label), "stall", now
        elif (
            not stale
            and state.stalled_since is not None
            and state.last_success is not None
            and state.last_success > state.stalled_since
        ):
            subject, body, key, since = *recovery_text(state, label), "stall-recovered", None
        else:
            continue
        dedupe = f"{key}:{state.job_id}:{(state.stalled_since or now).isoformat()}"
        try:
            with ctx.db.session() as session:
                ids = enqueue(session, "monitoring", None, "critical", subject, body, dedupe)
        except Exception as exc:  # the database may be what stalled: try again at the next round
            logger.warning("{} 的监控提醒尚未入队：{}", state.job_id, exc)
            continue
        logger.warning("监控提醒：{}：{}", subject, body)
        tracker.set_stalled(state.job_id, since)
        if state.job_id == "outbox-delivery" and ids:
            # The sender itself is what stalled: send this notice from here, or nobody would.
            deliver_ids(ctx.db, ctx.settings.notifications, ids)
    tracker.flush()
