"""The `yuqing` command line (exit 0 ok, 1 when some work failed, 2 on bad input)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

import typer
from loguru import logger

from service.config_files import ConfigError
from service.settings import Settings, load_settings

app = typer.Typer(
    help="yuqing 政务舆情监测与回应台账",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
sources_app = typer.Typer(help="来源 (sources)", no_args_is_help=True)
rules_app = typer.Typer(help="关键词规则 (rules)", no_args_is_help=True)
sla_app = typer.Typer(help="时限 (SLA)", no_args_is_help=True)
user_app = typer.Typer(help="用户 (users)", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(rules_app, name="rules")
app.add_typer(sla_app, name="sla")
app.add_typer(user_app, name="user")


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit."""
    typer.echo(f"yuqing: {message}", err=True)
    raise typer.Exit(code)


def not_available(command: str) -> NoReturn:
    fail(f"'{command}' 尚未提供 (not available yet)")


def settings_of(ctx: typer.Context, quiet: bool = False) -> Settings:
    """Settings for this invocation, logging set up; exit 2 on an invalid config."""
    cached = ctx.obj.get("settings") if ctx.obj else None
    if cached is not None:
        return cached
    from service.logs import setup_logging

    try:
        settings = load_settings((ctx.obj or {}).get("config_dir"))
    except ConfigError as exc:
        fail(str(exc))
    setup_logging(
        "WARNING" if quiet else settings.logging.level,
        settings.data_path("logs"),
        settings.logging.file_level,
        settings.logging.rotation,
        settings.logging.retention,
    )
    ctx.obj["settings"] = settings
    return settings


@app.callback()
def main_callback(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="配置目录 (default: $YUQING_CONFIG_DIR or ./config)"),
) -> None:
    ctx.obj = {"config_dir": config}


@app.command()
def init(ctx: typer.Context) -> None:
    """创建/迁移数据库，初始化条目存储 (ES 索引模板)。"""
    from service.context import AppContext
    from service.db import DatabaseUnavailable
    from service.store.base import StoreUnavailable

    settings = settings_of(ctx)
    app_ctx = AppContext.create(settings)
    try:
        app_ctx.db.migrate()
    except DatabaseUnavailable as exc:
        fail(str(exc))
    try:
        app_ctx.store.init()
    except StoreUnavailable as exc:
        fail(str(exc))
    finally:
        app_ctx.close()
    typer.echo(f"database ready: {app_ctx.db.engine.url.render_as_string()}")
    typer.echo(f"store ready: {settings.store.backend}")


def _serve(settings: Settings, host: str | None, port: int | None, with_scheduler: bool) -> None:
    import uvicorn

    from service.app import create_app

    api = create_app(settings, with_scheduler=with_scheduler)
    uvicorn.run(
        api,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_config=None,  # uvicorn's records go through loguru (service.logs)
        proxy_headers=True,
    )


@app.command()
def run(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="监听地址 (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="端口 (default 8000)"),
) -> None:
    """一个进程运行全部：API + 控制台 + 调度器。"""
    _serve(settings_of(ctx), host, port, with_scheduler=True)


@app.command()
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="监听地址"),
    port: int | None = typer.Option(None, help="端口"),
) -> None:
    """只运行 API + 控制台 (生产环境调度器单独运行)。"""
    _serve(settings_of(ctx), host, port, with_scheduler=False)


@app.command()
def scheduler(ctx: typer.Context) -> None:
    """只运行调度器 (生产环境的独立进程)。"""
    from service import context
    from service.app import prepare
    from service.context import AppContext
    from service.scheduling.lease import LeaseHeld
    from service.scheduling.scheduler import Scheduler

    settings = settings_of(ctx)
    app_ctx = AppContext.create(settings)
    context.set_current(app_ctx)
    problems = prepare(app_ctx)
    if "database" in problems:
        fail(problems["database"], 1)
    sched = Scheduler(app_ctx)
    try:
        sched.start()
    except LeaseHeld as exc:
        app_ctx.close()
        fail(str(exc), 1)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set() and not sched.lost.is_set():
        stop.wait(1)
    sched.shutdown()
    app_ctx.close()
    if sched.lost.is_set():
        raise typer.Exit(1)


@app.command()
def crawl(ctx: typer.Context, source_ids: list[str] = typer.Argument(None, help="来源 ID，省略则全部")) -> None:
    """立即抓取来源，输出每个来源的 新增/更新/跳过/错误 数。"""
    settings_of(ctx)
    not_available("crawl")


@sources_app.command("check")
def sources_check(ctx: typer.Context, source_id: str) -> None:
    """抓取一个列表页和一个详情页，输出提取的字段，不保存。"""
    settings_of(ctx)
    not_available("sources check")


@app.command()
def match(ctx: typer.Context) -> None:
    """立即匹配所有未匹配的条目，输出命中和新建工单数。"""
    settings_of(ctx)
    not_available("match")


@rules_app.command("check")
def rules_check(ctx: typer.Context) -> None:
    """校验全部规则，列出错误 (规则 ID 与位置)。"""
    settings_of(ctx)
    not_available("rules check")


@sla_app.command("check")
def sla_check(ctx: typer.Context, at: str | None = typer.Option(None, "--at", help="ISO 8601 时间")) -> None:
    """按当前或指定时间运行时限监控，输出预警/超期。"""
    settings_of(ctx)
    not_available("sla check")


@app.command()
def export(
    ctx: typer.Context,
    date_from: str = typer.Option(..., "--from", help="开始日期 YYYY-MM-DD (含)"),
    date_to: str = typer.Option(..., "--to", help="结束日期 YYYY-MM-DD (含)"),
    department: str | None = typer.Option(None, "--department"),
    fmt: str = typer.Option("xlsx", "--format", help="xlsx | csv"),
    output: Path = typer.Option(..., "-o", "--output"),
) -> None:
    """导出回应台账。"""
    settings_of(ctx)
    not_available("export")


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    username: str,
    role: str = typer.Option(..., "--role", help="admin | officer | department | leader | auditor"),
    department: str | None = typer.Option(None, "--department"),
) -> None:
    """新增用户，密码从标准输入读取。"""
    settings_of(ctx)
    not_available("user add")


@app.command()
def demo(ctx: typer.Context) -> None:
    """在本机回环地址上启动内置示例站点，并用它运行整个产品。"""
    settings_of(ctx)
    not_available("demo")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"yuqing: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        logger.info("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
