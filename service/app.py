"""The FastAPI application: API, console and (for `yuqing run`) the in-process scheduler."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from loguru import logger
from sqlalchemy.exc import InterfaceError, OperationalError

from alerting.stalls import check_stalls
from crawlers.scheduled import jobs as crawl_jobs
from service import context
from service.audit.scheduled import add_housekeeper
from service.audit.scheduled import jobs as audit_jobs
from service.auth.service import purge_sessions
from service.context import AppContext
from service.db import DatabaseUnavailable
from service.exports.scheduled import jobs as export_jobs
from service.feed.service import FEED_ALERTS
from service.flows import after_job
from service.folding import fold
from service.items.places import configure as configure_places
from service.items.places import gazetteer
from service.ledger.scheduled import jobs as ticket_jobs
from service.matching.scheduled import jobs as matching_jobs
from service.matching.worker import MatchingWorker
from service.rules.config import KEEP_DIR, keep_folding_tables
from service.scheduling import queue, registry
from service.scheduling.lease import LeaseHeld
from service.scheduling.scheduler import Scheduler
from service.settings import Settings
from service.store.base import StoreUnavailable
from service.upgrade import migrate

# Every domain's scheduled jobs, registered here and nowhere else, in the order of the flow.
DOMAIN_JOBS = (crawl_jobs, matching_jobs, ticket_jobs, export_jobs, audit_jobs)
for _factory in DOMAIN_JOBS:
    registry.register(_factory)
# With a task queue, the scheduler also gives the jobs of dead workers to live ones.
registry.register(queue.jobs)
# Dead login sessions go with the daily audit purge.
add_housekeeper("失效会话", lambda session, policy: purge_sessions(session, policy=policy))


def build_scheduler(ctx: AppContext) -> Scheduler:
    """The scheduler with every domain's jobs, the matching worker (new items matched within moments), the
    reactions of later stages to finished jobs (a crawl's notices and public replies) and stall notices.

    With a task queue (``queue.backend``) crawl and match jobs are deferred to ``yuqing worker`` processes
    (which react to them themselves); the matching trigger then only asks a worker to match.
    """
    trigger = MatchingWorker(ctx, run=lambda: queue.defer_match(ctx.settings)) if queue.enabled(ctx.settings) else None
    return Scheduler(
        ctx,
        workers=[trigger or MatchingWorker(ctx)],
        after_job=lambda job_id, result: after_job(ctx, job_id, result),
        watchers=[check_stalls],
    )


def prepare(ctx: AppContext) -> dict[str, str]:
    """Migrate the database and initialise the store; a down backend is reported, not fatal."""
    problems: dict[str, str] = {}
    try:
        migrate(ctx)
        queue.ensure_schema(ctx.settings)
    except (DatabaseUnavailable, psycopg.OperationalError) as exc:
        problems["database"] = str(exc)
        logger.error("数据库未就绪：{}", exc)
    try:
        ctx.store.init()
    except StoreUnavailable as exc:
        problems["store"] = str(exc)
        logger.error("条目存储未就绪（服务照常启动，/healthz 显示其状态）：{}", exc)
    return problems


DATABASE_DOWN = "数据库暂时不可用，请稍后重试"


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503, not 500, while the database cannot be reached: the request is worth retrying shortly."""
    logger.error("{} {}：数据库不可用：{}", request.method, request.url.path, str(exc).splitlines()[0][:300])
    return JSONResponse(status_code=503, content={"detail": DATABASE_DOWN}, headers={"Retry-After": "5"})


def _scheduler_died(app: FastAPI, reason: str) -> None:
    """A dead in-process scheduler ends the serving process (exit 1): never serve as if all were well."""
    app.state.fatal = reason
    stop = getattr(app.state, "stop_server", None)
    if stop is not None:
        stop()


def configure_process(settings: Settings) -> None:
    """What every process that matches or serves (API, scheduler, ``yuqing worker``) takes from the data dir
    and the config dir at start: the kept folding tables, and the gazetteer with the configured place names
    (departments.yaml regions, places.txt), which 可能是同一事件 compares."""
    keep_folding_tables(settings.data_path(KEEP_DIR))  # read from the data dir, not rebuilt at every start
    configure_places(settings.config_dir, settings.data_path(KEEP_DIR))


def load_places() -> None:
    """Load jieba's dictionary and the folding tables now (a second or more of CPU), not in the first
    request or matching run that needs them, which would wait on it (seconds under load)."""
    began, cpu = time.monotonic(), time.thread_time()
    places = gazetteer()
    places.prepare()
    # The folding tables (case and width, built on first use) likewise: the first search or rule trial
    # after a start would otherwise build them inside the request.
    fold("预热 Ａ1")
    # What is loaded by now (modules, mappers, the dictionary) lives as long as the process: keep it out of
    # the garbage collector's full passes, which otherwise walk it all (~90 ms holding the GIL, so every
    # request waits) each time.
    gc.freeze()
    source = "数据目录中的缓存" if places.loaded_from == "kept" else "重新构建"
    logger.info(
        "地名词典已加载（jieba，{}，用时 {:.1f} 秒，CPU {:.1f} 秒）",
        source,
        time.monotonic() - began,
        time.thread_time() - cpu,
    )


def create_app(settings: Settings, with_scheduler: bool = False, ctx: AppContext | None = None) -> FastAPI:
    """Build the app; ``with_scheduler`` hosts the scheduler in this process (``yuqing run`` only)."""
    configure_process(settings)
    ctx = ctx or AppContext.create(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context.set_current(ctx)
        prepare(ctx)
        scheduler = None
        if with_scheduler:
            scheduler = build_scheduler(ctx)
            try:
                scheduler.start()
            except LeaseHeld as exc:
                # Serving still helps; double-running jobs would not. /healthz tells the operator.
                logger.error("调度器未启动：{}", exc)
                app.state.scheduler_error = str(exc)
                scheduler = None
        if scheduler is not None:
            scheduler.on_fatal.append(lambda reason: _scheduler_died(app, reason))
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown()
            ctx.close()

    app = FastAPI(
        title="yuqing 政务舆情监测与回应",
        version="0.1.0",
        lifespan=lifespan,
        # /openapi.json and /docs: signed-in users only, Swagger UI served locally (service.api_docs).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    # The ledger's API re-links an item's alert on 拆单 through this (the ledger does not import the feed).
    app.state.ticket_alerts = FEED_ALERTS

    from service.api_docs import install_docs
    from service.auth.api import router as auth_router
    from service.auth.middleware import install_security
    from service.console.routes import install as install_console
    from service.dashboard.api import router as dashboard_router
    from service.exports.api import router as exports_router
    from service.feed.api import router as alerts_router
    from service.health import router as health_router
    from service.input_guard import ErrorBoundary, InputGuard
    from service.items.api import router as items_router
    from service.ledger.api import router as tickets_router
    from service.oversight.audit_api import router as audit_router
    from service.oversight.users_api import router as users_router
    from service.reveals import install_reveal_audit
    from service.rules.api import router as rules_router
    from service.sources.api import router as sources_router

    # Innermost first: the guard reads bodies the security middleware has already size-capped.
    app.add_middleware(InputGuard)
    install_security(app, settings)
    app.add_middleware(ErrorBoundary)
    install_reveal_audit(app)
    # Connection refused/lost (OperationalError), a connection closed under us (InterfaceError).
    for unreachable in (OperationalError, InterfaceError, DatabaseUnavailable):
        app.add_exception_handler(unreachable, database_unavailable)
    from fastapi.exceptions import RequestValidationError

    from service.validation_zh import validation_error

    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(health_router)
    install_docs(app)
    app.include_router(auth_router)
    app.include_router(audit_router)
    app.include_router(items_router)
    app.include_router(tickets_router)
    app.include_router(dashboard_router)
    app.include_router(alerts_router)
    app.include_router(rules_router)
    app.include_router(sources_router)
    app.include_router(exports_router)
    app.include_router(users_router)
    install_console(app)
    return app
