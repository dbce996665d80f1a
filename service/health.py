"""GET /healthz: can the service reach its store and database, and is every scheduled job running.

200 with ``"status": "ok"`` when all is well; 503 with ``"status": "degraded"`` and ``reasons`` (Chinese,
one per problem) when the store or the database is down, the scheduler stopped or lost its lease, or a
job's last success is older than ``scheduler.stale_factor`` (3) × its interval (and than
``scheduler.stale_min_seconds``, so that a job of a few seconds is not "stalled" by a busy moment).
``warnings`` (Chinese) lists what an admin should fix but that does not stop monitoring (a year without
configured holidays): they never make the answer degraded.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from loguru import logger

from service import clock
from service.config_files import ConfigError
from service.deps import CtxDep
from service.ledger.config import holiday_notices
from service.scheduling.jobhealth import JobState, load_states

router = APIRouter(tags=["health"])
DEGRADED_STATUS = 503


@router.get("/healthz")
def healthz(ctx: CtxDep, request: Request) -> JSONResponse:
    """200 when healthy; 503 ``degraded`` with the reasons otherwise (the body is the same shape)."""
    # Public endpoint: status and backend only; the reasons of a down backend (hosts, URLs) go to the log.
    store = _public(ctx.store.health(), "store")
    database = _public(ctx.db.health(), "database")
    scheduler = getattr(request.app.state, "scheduler", None)
    now = clock.now()
    factor = ctx.settings.scheduler.stale_factor
    floor = ctx.settings.scheduler.stale_min_seconds
    reasons: list[str] = []
    if store["status"] != "ok":
        reasons.append("条目存储不可用")
    if database["status"] != "ok":
        reasons.append("数据库不可用")
    states = _job_states(ctx, scheduler, database["status"] == "ok")
    scheduler_status = _scheduler_status(request, scheduler)
    if scheduler_status["status"] in ("failed", "lost"):
        reasons.append("调度器已停止：抓取、匹配、时限监控和通知都不再运行")
    jobs = [state.public(now, factor, floor) for state in states]
    for job in jobs:
        if job["status"] == "stalled":
            reasons.append(f"任务「{job['name']}」最近一次成功已超过 {factor:g} 个周期")
    body: dict[str, Any] = {
        "status": "degraded" if reasons else "ok",
        "time": now.isoformat(),
        "store": store,
        "database": database,
        "scheduler": scheduler_status,
        "jobs": jobs,
        "reasons": reasons,
        "warnings": _warnings(ctx),
    }
    return JSONResponse(body, status_code=DEGRADED_STATUS if reasons else 200)


def _warnings(ctx: Any) -> list[str]:
    try:
        return holiday_notices(ctx.settings.config_dir)
    except ConfigError as exc:  # a broken sla.yaml or holidays.yaml is reported at start and on the SLA page
        logger.warning("健康检查：无法读取工作日历：{}", exc)
        return []


def _job_states(ctx: Any, scheduler: Any, database_ok: bool) -> list[JobState]:
    if scheduler is not None:
        return scheduler.tracker.snapshot()
    if not database_ok:
        return []
    try:
        return load_states(ctx.db)  # written by the scheduler process (yuqing scheduler)
    except Exception as exc:
        logger.warning("健康检查：无法读取任务状态：{}", exc)
        return []


def _public(status: dict[str, Any], name: str) -> dict[str, Any]:
    if "error" in status:
        logger.warning("健康检查：{} 不可用：{}", name, status["error"])
    # "spooled": items waiting for Elasticsearch to return (all machines' together), a count only.
    return {k: v for k, v in status.items() if k in ("status", "backend", "spooled")}


def _scheduler_status(request: Request, scheduler: Any) -> dict[str, Any]:
    if getattr(request.app.state, "scheduler_error", None):
        return {"status": "refused"}
    if scheduler is None:
        return {"status": "external"}
    if scheduler.failed:
        return {"status": "failed"}
    if scheduler.lost.is_set():
        return {"status": "lost"}
    return {"status": "in-process"}
