"""Commands that run the product: init, worker, run, serve, scheduler (the demo is service.cli.demo)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TypedDict

import typer
from loguru import logger

from service.cli.base import app, fail, settings_of
from service.settings import Settings


@app.command()
def init(ctx: typer.Context) -> None:
    """创建/迁移数据库，初始化条目存储 (ES 索引模板)。"""
    import psycopg

    from service.context import AppContext
    from service.db import DatabaseUnavailable
    from service.feed.service import FEED_ALERTS
    from service.items.duplicates import backfill_bands
    from service.ledger.regions import fill_regions
    from service.ledger.related import backfill_recent
    from service.scheduling import queue
    from service.store.base import StoreUnavailable
    from service.upgrade import migrate

    settings = settings_of(ctx)
    app_ctx = AppContext.create(settings)
    try:
        migrate(app_ctx)
        # The task queue's tables (procrastinate) live in the same PostgreSQL database.
        queued = queue.ensure_schema(settings)
    except DatabaseUnavailable as exc:
        fail(str(exc))
    except psycopg.OperationalError as exc:
        fail(f"数据库不可用：{str(exc).splitlines()[0]}")
    try:
        app_ctx.store.init()
        backfilled = backfill_bands(app_ctx.store)
        with app_ctx.db.session() as session:
            suggested = backfill_recent(session, app_ctx.store, FEED_ALERTS)
        with app_ctx.db.session() as session:
            regions = fill_regions(session, app_ctx.store)
    except StoreUnavailable as exc:
        fail(str(exc))
    finally:
        app_ctx.close()
    typer.echo(f"database ready: {app_ctx.db.engine.url.render_as_string()}")
    typer.echo(f"store ready: {settings.store.backend}")
    if backfilled:
        typer.echo(f"已为 {backfilled} 条旧条目补建转载比对索引 (LSH bands backfilled)")
    if suggested:
        typer.echo(f"已为近 72 小时未办结的工单补算 {suggested} 条“可能是同一事件”提示")
    if regions:
        typer.echo(f"已为 {regions} 件工单识别“地域分布”所用的地点")
    if queue.is_postgresql(settings):
        typer.echo(f"task queue ready: procrastinate {queue.installed_version()}" + (f" ({queued})" if queued else ""))


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: int = typer.Option(1, min=1, max=64, help="同时执行的任务数（每个抓取任务一个子进程）"),
) -> None:
    """工作进程：从任务队列领取抓取与匹配任务（需 queue.backend: procrastinate）。可在多台机器上运行任意个。"""
    from service.context import AppContext
    from service.scheduling import queue
    from service.worker import run_worker

    settings = settings_of(ctx)
    if not queue.enabled(settings):
        fail("任务队列未启用：请在 settings.yaml 中设置 queue.backend: procrastinate（database.url 须为 PostgreSQL）")
    app_ctx = AppContext.create(settings)
    try:
        run_worker(app_ctx, concurrency=concurrency)
    finally:
        app_ctx.close()


def ensure_port_free(host: str, port: int, what: str = "端口") -> None:
    """Exit 2 with one Chinese line when ``host:port`` cannot be listened on, before anything else starts
    (the scheduler's lease, the demo site): a busy port must not leave half a product running."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        fail(f"监听地址 {host} 无法解析")
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # The same option uvicorn sets: a port in TIME_WAIT after a restart is not "busy".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except PermissionError:
            fail(f"{what} {port} 需要更高权限才能监听（{host}:{port}），请换一个 1024 以上的端口")
        except OSError:
            fail(f"{what} {port} 已被占用（{host}:{port}），请关闭占用它的程序或用 --port 换一个端口")


# Seconds a stop waits for open connections (live streams end on their own within a poll).
SHUTDOWN_GRACE_SECONDS = 5


def serve_product(settings: Settings, host: str | None, port: int | None, with_scheduler: bool) -> None:
    import uvicorn

    from service.app import create_app, load_places

    host, port = host or settings.server.host, port or settings.server.port
    ensure_port_free(host, port)
    api = create_app(settings, with_scheduler=with_scheduler)
    # jieba's dictionary (a second or more of CPU) loads now, beside the start-up, instead of inside the
    # first ticket views, which would wait on it (seconds under load).
    threading.Thread(target=load_places, name="gazetteer-load", daemon=True).start()

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises a stop signal once it has served, and the process ends at once. The log file's
            # sink writes from a queue: drained first, or its last lines (应用已停止, 服务进程已结束) were lost.
            with super().capture_signals():
                try:
                    yield
                finally:
                    logger.complete()

    server = Server(
        uvicorn.Config(
            api,
            host=host,
            port=port,
            log_config=None,  # uvicorn's records go through loguru (service.logs)
            # A connection still open this long after a stop is cut: a supervisor's stop (docker: 10 s)
            # must end us, not its SIGKILL.
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            **proxy_options(settings),
        )
    )
    # A stop signal tells long work (crawls) to wind down at once, while open connections drain, not after them.
    plain_exit = server.handle_exit

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        plain_exit(sig, frame)
        api.state.ctx.stopping.set()

    setattr(server, "handle_exit", handle_exit)  # noqa: B010 - uvicorn installs self.handle_exit as the handler
    # A scheduler that died stops the server; the exit code tells the supervisor to restart us.
    api.state.stop_server = lambda: setattr(server, "should_exit", True)
    # Live streams (every open console holds one) end when the server stops; uvicorn would otherwise wait
    # for them forever, and neither a SIGTERM nor a dead scheduler would end the process.
    api.state.exiting = lambda: server.should_exit
    server.run()
    if getattr(api.state, "fatal", None):
        fail(f"调度器已停止，进程退出以便由守护进程重启：{api.state.fatal}", 1)


class ProxyOptions(TypedDict, total=False):
    """The keyword arguments of uvicorn.Config that decide whose forwarded-for headers are believed."""

    proxy_headers: bool
    forwarded_allow_ips: list[str]


def proxy_options(settings: Settings) -> ProxyOptions:
    """uvicorn's proxy-header options: believed only from server.trusted_proxies (default: from nobody).

    uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1, so any local process (or a forged header
    behind a plain TCP forwarder) could pose as any address and slip past per-address sign-in limits.
    """
    trusted = settings.server.trusted_proxies
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted)}


@app.command()
def run(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="监听地址 (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="端口 (default 8000)"),
) -> None:
    """一个进程运行全部：API + 控制台 + 调度器。"""
    serve_product(settings_of(ctx), host, port, with_scheduler=True)


@app.command()
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="监听地址"),
    port: int | None = typer.Option(None, help="端口"),
) -> None:
    """只运行 API + 控制台 (生产环境调度器单独运行)。"""
    serve_product(settings_of(ctx), host, port, with_scheduler=False)


@app.command()
def scheduler(ctx: typer.Context) -> None:
    """只运行调度器 (生产环境的独立进程)。"""
    from service import context
    from service.app import build_scheduler, prepare
    from service.context import AppContext
    from service.scheduling.lease import LeaseHeld

    settings = settings_of(ctx)
    app_ctx = AppContext.create(settings)
    context.set_current(app_ctx)
    problems = prepare(app_ctx)
    if "database" in problems:
        fail(problems["database"], 1)
    sched = build_scheduler(app_ctx)
    try:
        sched.start()
    except LeaseHeld as exc:
        app_ctx.close()
        fail(str(exc), 1)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set() and not sched.lost.is_set() and not sched.failed:
        stop.wait(1)
    sched.shutdown()
    app_ctx.close()
    if sched.failed:
        fail(f"调度器已停止，进程退出以便由守护进程重启：{sched.failed}", 1)
    if sched.lost.is_set():
        raise typer.Exit(1)
